"""Dataset readers, deterministic splits, synthetic generators and fetchers."""

from __future__ import annotations

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

__all__ = [
    "check_dna_items",
    "pad_collate",
    "prepare_dna_datalists",
    "read_dna_dataset",
    "read_fasta",
    "read_label_file",
    "read_sequence_table",
    "check_nuclei_items",
    "find_dsb_root",
    "list_images",
    "load_datalist",
    "prepare_nuclei_datalists",
    "read_dsb_stage1",
    "read_image_mask_pairs",
    "read_nuclei_dataset",
    "save_datalist",
    "split_items",
]

__all__ += [
    "find_medmnist_npz",
    "generate_medmnist_npz",
    "list_medmnist_inputs",
    "medmnist_task_info",
    "prepare_medmnist_datalists",
    "read_medmnist_npz",
]
