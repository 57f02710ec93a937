"""SLKD: knowledge distillation with self-learning teachers (Liu, Li and Cheng).

Two self-learning teachers (SL-teachers) with the teacher's architecture start from random
weights and learn from the frozen teacher in every step beside the student (Eqs. 4, 5); their
logits, fused with weight rho (Eq. 6), supervise the student next to the teacher (Eqs. 1, 3, 7).
`slkd.method` registers the method as `slkd`; `python -m slkd.train --recipe FILE` runs it.
"""
