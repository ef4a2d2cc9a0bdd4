"""Faces in photographs: detection, 68-point landmarks (dlib) and FFHQ-style alignment."""
