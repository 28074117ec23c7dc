"""A recipe's experiments: `hilbert train` and `hilbert compare` over one experiment runner.

- experiment.py      the one runner: datasets, each task's folds made once, cached CV runs
                     (RunSpec -> RunResult), the recipe's dataset (load_dataset)
- train.py           train(recipe) -> TrainResult: variants + baselines cross-validated, final models
- compare.py         compare(recipe) -> CompareResult: variants, loss ablation, weight sweeps -> tables
- report.py          the one report writer (report.md = a title + sections)
- train_report.py    train's sections, metrics/predictions Parquet, summary.json, ROC and fold plots
- compare_report.py  compare's sections (paper Tables 2-4), compare.json, runs/oof Parquet
- compare_plots.py   compare's PNGs
- config.py          the recipe's typed [compare] section
- stats.py           AUC intervals (bootstrap over recordings/groups, across folds), paired tests
                     (DeLong, paired bootstrap, corrected fold t-test), Holm adjustment
- ablation.py        the 7 non-empty combinations of {contrastive, CKA, MI} over identical folds
- sweep.py           loss-weight sensitivity (one weight varied, the others fixed)
- diagnostics.py     modality balance: CKA(Z_m, Z_j), InfoNCE MI estimates, MoE gate usage,
                     audio-only / text-only masking check

This layer sits on hilbert_cli/training/ (fitting, CV of one configuration, baselines,
checkpoints) and hilbert_cli/nn/ (the network); neither imports it. Submodules import torch
only where they need it.
"""
