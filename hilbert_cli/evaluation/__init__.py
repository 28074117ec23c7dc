"""Honest comparisons of HILBERT variants (`hilbert compare`, issue 8).

- stats.py        AUC intervals (bootstrap over recordings/groups, across folds), paired tests
                  (DeLong, paired bootstrap, corrected fold t-test), Holm adjustment
- ablation.py     the 7 non-empty combinations of {contrastive, CKA, MI} over identical folds
- sweep.py        loss-weight sensitivity (one weight varied, the others fixed)
- diagnostics.py  modality balance: CKA(Z_m, Z_j), InfoNCE MI estimates, MoE gate usage,
                  audio-only / text-only masking check (`modality_diagnostics`)
- report.py       markdown + PNG laid out like the paper's Tables 2-4
- runner.py       one compare run: variants, ablation, sweeps over the same folds

Submodules import torch only where they need it.
"""
