"""SoKD (Shen et al., ACM MM 2024): learned feature augmentation (DAFA) and distinctive-area
masks (DAM) over a feature-distillation base; registered as `method.name: sokd`."""
