"""Reading and writing images and benchmark files; datasets of noisy crops and pairs."""
