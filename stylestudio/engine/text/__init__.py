"""Vision-language encoders (an exact CLIP from the user's file, the built-in MiniLM text model) and
ContraCLIP text paths."""
