"""The HILBERT network: segment encoders, joint encoder, MoE classifier and the losses."""
