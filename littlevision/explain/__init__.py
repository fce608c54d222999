"""See what the convnet sees: Grad-CAM, feature maps, filters, and one shareable HTML report.

Every explanation is a plain function returning arrays (or PNG bytes), and a CLI verb. Importing
this package is cheap: TensorFlow and matplotlib are loaded by the functions that need them.
"""

from littlevision.explain._feature_maps import (
    FeatureMap,
    FeatureMaps,
    default_layers,
    feature_maps,
    feature_maps_figure,
    feature_maps_png,
)
from littlevision.explain._gradcam import (
    Explainer,
    GradCAMResult,
    get_explainer,
    gradcam,
    gradcam_overlay,
)
from littlevision.explain._graph import LayerInfo, list_layers
from littlevision.explain.filters import (
    AscentConfig,
    filters_grid,
    first_layer_filters,
    maximize_activation,
    maximize_class,
)
from littlevision.explain.panel import ExplainedImage, explain_images, explanation_png
from littlevision.explain.report import ReportConfig, write_report

__all__ = [
    "AscentConfig",
    "ExplainedImage",
    "Explainer",
    "FeatureMap",
    "FeatureMaps",
    "GradCAMResult",
    "LayerInfo",
    "ReportConfig",
    "default_layers",
    "explain_images",
    "explanation_png",
    "feature_maps",
    "feature_maps_figure",
    "feature_maps_png",
    "filters_grid",
    "first_layer_filters",
    "get_explainer",
    "gradcam",
    "gradcam_overlay",
    "list_layers",
    "maximize_activation",
    "maximize_class",
    "write_report",
]
