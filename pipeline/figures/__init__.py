"""Pictures of results, drawn with matplotlib and the lab's image grids: the sample stage's figures (what each kind
of data looks like sampled, the latent space's walks and arithmetic, projections of real images) and the report's
plots. Drawing lives on its own floor: a module that measures or trains never imports it, so editing a caption or a
colour reruns only the stages that draw."""

from pipeline.figures.kinds import sample_figure
from pipeline.figures.plots import save_growth, save_latent_figures, save_projection

__all__ = ["sample_figure", "save_growth", "save_latent_figures", "save_projection"]
