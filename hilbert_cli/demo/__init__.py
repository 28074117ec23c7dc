"""The built-in demo: a synthetic interview corpus and the one-command end-to-end run.

`hilbert demo` builds a small espeak-ng interview corpus whose document-level labels are
carried by what the participant says (sentiment) and how it is said (pitch, rate, volume),
then prepares, embeds, trains (k-fold CV) and scores held-out recordings, offline.
"""
