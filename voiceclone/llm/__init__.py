"""A local LLM (llama.cpp through llama-cpp-python) in plain Python: model files, and streaming chat replies."""
