"""The data stage: raw manifests of image folders and tables, pandera contracts, cleaning
with a drop report, the stable sealed split, `data add`, the embedded defaults, annotations."""
