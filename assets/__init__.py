"""Shipped data: the trained models, the corpus they were trained on, fonts. See assets/README.md."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MODELS = ROOT / "models"
CORPUS = ROOT / "corpus" / "kjv.txt.gz"
SHIPPED = {"masked": "kjv-masked", "uniform": "kjv-uniform", "continuous": "kjv-continuous"}  # the shipped diffusion model of each family
