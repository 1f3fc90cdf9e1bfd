"""Cloning a voice: recordings into an enrolled voice, and base-voice speech converted into it.

`conversion` is the one interface both converters sit behind (`openvoice_conversion`, `matcher_conversion`),
`choice` picks one (`auto | openvoice | matcher`), `checkpoints` keeps the OpenVoice weights (download, locate),
`calibration` is what a base voice reads to learn its own tone color, `enrollment` turns recordings into a voice,
`cloned` speaks sentences in a voice chunk by chunk, and `speaker` composes what `speak` and `eval` speak with.
"""
