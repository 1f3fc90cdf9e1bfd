"""The OpenVoice tone-color converter, checkpoint-compatible with the published V1 and V2 weights.

Plain PyTorch; knows nothing of Pipecat, the CLI or the voice library. `converter.ToneColorConverter` is the
entry point; `errors.CheckpointError` what a bad checkpoint raises (importing it does not import torch).
"""
