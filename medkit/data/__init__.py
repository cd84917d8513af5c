"""Dataset readers, deterministic splits, synthetic generators and fetchers."""

from __future__ import annotations

from medkit.data.class_mapping import ClassMapping, read_mapping
from medkit.data.coco import prepare_coco_masks_datalists, write_coco_masks
from medkit.data.datalist import load_datalist, save_datalist, split_items
from medkit.data.dna import (
    check_dna_items,
    pad_collate,
    prepare_dna_datalists,
    read_dna_dataset,
    read_fasta,
    read_label_file,
    read_sequence_table,
)
from medkit.data.endo import (
    check_label_values,
    list_frames,
    prepare_colorization_datalists,
    prepare_endo_datalists,
)
from medkit.data.endovis import endovis2017_mapping, read_endovis2017
from medkit.data.fashion import (
    prepare_fashion_datalists,
    read_fashion_inputs,
    read_fashion_split,
    read_idx,
    write_idx,
)
from medkit.data.medmnist import (
    find_medmnist_npz,
    generate_medmnist_npz,
    list_medmnist_inputs,
    medmnist_task_info,
    prepare_medmnist_datalists,
    read_medmnist_npz,
)
from medkit.data.nuclei import (
    check_nuclei_items,
    find_dsb_root,
    list_images,
    prepare_nuclei_datalists,
    read_dsb_stage1,
    read_image_mask_pairs,
    read_nuclei_dataset,
)
from medkit.data.pcam import check_pcam_items, list_patches, prepare_pcam_datalists, read_pcam_folder
from medkit.data.retina import (
    RETINA_LAYOUTS,
    check_retina_items,
    estimate_fov,
    prepare_retina_datalists,
    read_retina_split,
)
from medkit.data.shapes import check_label_items, prepare_shapes_datalists, read_class_names, read_label_pairs
from medkit.data.synthetic_pcam import generate_pcam_dataset
from medkit.data.synthetic_retina import generate_retina_dataset, synthesize_fundus

__all__ = [
    "RETINA_LAYOUTS",
    "ClassMapping",
    "check_dna_items",
    "check_label_items",
    "check_label_values",
    "check_nuclei_items",
    "check_pcam_items",
    "check_retina_items",
    "endovis2017_mapping",
    "estimate_fov",
    "find_dsb_root",
    "find_medmnist_npz",
    "generate_medmnist_npz",
    "generate_pcam_dataset",
    "generate_retina_dataset",
    "list_frames",
    "list_images",
    "list_medmnist_inputs",
    "list_patches",
    "load_datalist",
    "medmnist_task_info",
    "pad_collate",
    "prepare_coco_masks_datalists",
    "prepare_colorization_datalists",
    "prepare_dna_datalists",
    "prepare_endo_datalists",
    "prepare_fashion_datalists",
    "prepare_medmnist_datalists",
    "prepare_nuclei_datalists",
    "prepare_pcam_datalists",
    "prepare_retina_datalists",
    "prepare_shapes_datalists",
    "read_class_names",
    "read_dna_dataset",
    "read_dsb_stage1",
    "read_endovis2017",
    "read_fashion_inputs",
    "read_fashion_split",
    "read_fasta",
    "read_idx",
    "read_image_mask_pairs",
    "read_label_file",
    "read_label_pairs",
    "read_mapping",
    "read_medmnist_npz",
    "read_nuclei_dataset",
    "read_pcam_folder",
    "read_retina_split",
    "read_sequence_table",
    "save_datalist",
    "split_items",
    "synthesize_fundus",
    "write_coco_masks",
    "write_idx",
]
