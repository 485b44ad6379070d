"""REF-VLM special tokens: added to any tokenizer (as plain added tokens) and the LLM embedding resized.

The tags are added with ``special=False`` so that decoding with ``skip_special_tokens=True`` keeps
them (the answer parser needs them); ``normalized=False`` keeps them whole in every tokenizer.
"""
from typing import Dict, Optional, Sequence

TASK_OPEN, TASK_CLOSE = '<Task>', '</Task>'
UNIT_OPEN, UNIT_CLOSE = '<Unit>', '</Unit>'
PHRASE_OPEN, PHRASE_CLOSE = '<Phrase>', '</Phrase>'
REF_TOKEN = '<REF>'
REF_VLM_TOKENS = (TASK_OPEN, TASK_CLOSE, UNIT_OPEN, UNIT_CLOSE, PHRASE_OPEN, PHRASE_CLOSE, REF_TOKEN)


def add_ref_tokens(tokenizer, llm=None, tokens: Sequence[str] = REF_VLM_TOKENS,
                   mean_init: bool = True) -> Dict[str, int]:
    """Add the REF-VLM tags to ``tokenizer`` (idempotent) and resize ``llm``'s embeddings to match.

    Args:
        tokenizer: a transformers tokenizer (slow or fast).
        llm: optional causal LM; its input (and untied output) embeddings are resized to
            ``len(tokenizer)``. New rows start at the mean of the old rows when ``mean_init``.
        tokens: the tags to add.
    Returns:
        ``{tag: token id}`` for every tag.
    """
    from tokenizers import AddedToken
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False, single_word=False,
                                         lstrip=False, rstrip=False) for t in missing])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in tokens}
    for t, i in ids.items():
        if tokenizer.encode(t, add_special_tokens=False) != [i]:
            raise RuntimeError(f'add_ref_tokens: {t!r} does not encode to its single id {i} in '
                               f'{type(tokenizer).__name__}')
    if llm is not None:
        resize_embeddings(llm, len(tokenizer), mean_init=mean_init)
    return ids


def resize_embeddings(llm, vocab_size: int, mean_init: bool = True) -> None:
    """Resize ``llm``'s token embeddings (and an untied LM head) to ``vocab_size`` rows (never shrinks).

    Rows added here start at the mean of the existing rows when ``mean_init`` (the usual recipe when
    adding tokens), so new tokens do not start with outlying logits.
    """
    old = llm.get_input_embeddings().weight.shape[0]
    if vocab_size <= old:
        return
    llm.resize_token_embeddings(vocab_size, mean_resizing=False)
    if not mean_init:
        return
    import torch
    with torch.no_grad():
        emb = llm.get_input_embeddings().weight
        emb[old:] = emb[:old].mean(0, keepdim=True)
        head: Optional[torch.nn.Module] = llm.get_output_embeddings()
        if head is not None and head.weight is not emb:
            head.weight[old:] = head.weight[:old].mean(0, keepdim=True)
            if getattr(head, 'bias', None) is not None:
                head.bias[old:] = head.bias[:old].mean()


def load_ref_vlm_tokenizer(path_or_cfg):
    """:func:`llmvision.models.llm.tokenizer.load_tokenizer` plus the REF-VLM tags (for dataset encoders: the
    model adds the same tags in the same order to its own copy, so the ids agree)."""
    from llmvision.models.llm.tokenizer import load_tokenizer
    tok = load_tokenizer(path_or_cfg)
    add_ref_tokens(tok)
    return tok
