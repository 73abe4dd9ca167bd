"""Attention in transformers (chapter 10): attention maps, head statistics, drawing, and
running a model with edited attention."""
from .edit import attention_replaced, self_attention_modules
from .heads import STATISTICS, head_statistics, heads_table
from .maps import AttentionMaps, attention_maps, average_attention, word_level_attention
from .plots import attention_grid, show_attention, show_head_statistic

__all__ = [
    "AttentionMaps",
    "STATISTICS",
    "attention_grid",
    "attention_maps",
    "attention_replaced",
    "average_attention",
    "head_statistics",
    "heads_table",
    "self_attention_modules",
    "show_attention",
    "show_head_statistic",
    "word_level_attention",
]
