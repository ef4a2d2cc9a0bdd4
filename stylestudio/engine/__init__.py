"""The engine: pure PyTorch + numpy + scikit-learn. Never imports Qt; usable headless."""
