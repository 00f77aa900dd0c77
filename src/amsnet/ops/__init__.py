"""Pure tensor operations: PD, mask partitions, padding, refinement."""
