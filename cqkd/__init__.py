"""CQKD: cross-quality knowledge distillation with teacher calibration (Čuk et al.).

Importing `cqkd.method` registers the methods `cqkd` (Eq. 2) and `lowres` (the supervised
low-resolution baseline); DML, the other baseline, is shared in `common.methods.dml`.
"""
