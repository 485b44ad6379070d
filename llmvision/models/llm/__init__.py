"""Causal-LM plumbing shared by the LLMDet captioner, the REC selector and the multimodal LLMs:
chunked cross-entropy (``loss``), batched KV-cache generation (``generation``), tiny random LLM configs
(``tiny``); tokenizer loading and chat templates / answer-only labels (``tokenizer``, ``conversation``)."""
from .conversation import ConversationEncoder, EncodedConversation, render_chatml, render_vicuna_v1
from .generation import StopStrings, generate
from .loss import causal_lm_loss, chunked_cross_entropy, shift_for_next_token
from .tiny import LORA_TARGETS, lora_cfg, tiny_llama_llm_cfg, tiny_qwen2_llm_cfg
from .tokenizer import load_tokenizer

__all__ = ['ConversationEncoder', 'EncodedConversation', 'render_chatml', 'render_vicuna_v1', 'load_tokenizer',
           'StopStrings', 'generate', 'causal_lm_loss', 'chunked_cross_entropy', 'shift_for_next_token',
           'LORA_TARGETS', 'lora_cfg', 'tiny_llama_llm_cfg', 'tiny_qwen2_llm_cfg']
