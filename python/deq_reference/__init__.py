"""Independent PyTorch reference of the Sanger / DEQ attention semantics (research notes, algorithm.md §5).

`reference` implements the formulas with torch operations in the style of the reference repositories
(hatsu3/Sanger, ACA-Lab/DEQ); `generate_cases` writes random test cases (inputs, parameters and reference
outputs as .npy files plus an index.json) that the C++ comparison test in tests/reference reads.
"""
