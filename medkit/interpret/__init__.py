"""Interpretability for medkit classifiers: saliency maps, feature maps, Grad-CAM and the figures that show them."""

from __future__ import annotations

from medkit.interpret.feature_maps import FeatureMaps, conv_layer_names, feature_maps
from medkit.interpret.figures import save_feature_map_grid, save_map_grid
from medkit.interpret.gradcam import default_target_layer, grad_cam
from medkit.interpret.saliency import class_scores, predicted_class, saliency_map

__all__ = [
    "FeatureMaps",
    "class_scores",
    "conv_layer_names",
    "default_target_layer",
    "feature_maps",
    "grad_cam",
    "predicted_class",
    "saliency_map",
    "save_feature_map_grid",
    "save_map_grid",
]
