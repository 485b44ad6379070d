"""Draw a detector's predictions on an image or a folder of images.

    # open-vocabulary detection: a category list
    python tools/image_demo.py IMG_OR_DIR CONFIG --weights CKPT --text "red circle . blue square ."
    # phrase grounding: a caption; entities from nltk noun phrases, or given
    python tools/image_demo.py IMG CONFIG --weights CKPT --mode grounding \
        --text "a red circle next to a blue square" --entities "red circle,blue square"
    # referring expression: one box
    python tools/image_demo.py IMG CONFIG --weights CKPT --rec --text "the red circle on the left"
    # multimodal LLM (a LLaVA config): answer a question about each image
    python tools/image_demo.py IMG CONFIG --weights CKPT --mode chat --text "What color is the triangle?"

Writes ``OUT_DIR/vis/<name>.png`` (boxes, labels, scores) and ``OUT_DIR/preds/<name>.json``; chat mode
prints ``answer: ...`` per image and writes ``OUT_DIR/preds/<name>.json`` (image, question, answer).
Bad input (missing image, empty text, a weights file that is no checkpoint or does not match
the config, a device this machine lacks) ends with a one-line error and exit status 1; inputs,
text and device are checked before the model is loaded. In a folder, an image that cannot be
read or predicted is reported and the demo goes on; the failed images are listed at the end
and the exit status is 1.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Grounding-DINO image demo')
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config', help='model config')
    parser.add_argument('--weights', required=True,
                        help='checkpoint (ours, HF or mmdet format; chat: ours, llava-hf or original LLaVA)')
    parser.add_argument('--text', required=True,
                        help='categories "a . b ." (detection), a caption (grounding) or an '
                        'expression (rec) or a question (chat)')
    parser.add_argument('--mode', choices=['detection', 'grounding', 'rec', 'chat'], default='detection',
                        help='chat: a multimodal LLM config (configs/llava/) answers --text about the image')
    parser.add_argument('--rec', action='store_true', help='shortcut for --mode rec')
    parser.add_argument('--entities', help='grounding: comma-separated phrases of the caption '
                        '(default: nltk noun phrases when nltk data is installed)')
    parser.add_argument('--out-dir', default='outputs', help='output folder')
    parser.add_argument('--pred-score-thr', type=float, default=0.3, help='draw boxes above this score')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides k=v')
    return parser.parse_args(argv)


def list_images(path: str):
    if osp.isdir(path):
        files = sorted(osp.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTS)}) in folder {path}')
        return files
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    return [path]


def read_bgr(path: str):
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'cannot read image (unreadable or corrupt): {path}')
    return image


class DemoFailures(RuntimeError):
    """Some images of a folder could not be processed (the others were written)."""


def one_line(err: BaseException) -> str:
    """An exception's message on one line (a KeyError's message without the quotes repr adds)."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return ' | '.join(line.strip() for line in str(message).splitlines() if line.strip())


def run(args):
    from tqdm import tqdm

    import llmvision  # noqa: F401
    from llmvision.apis import init_detector
    from llmvision.apis.inference import check_device, make_prompt
    from llmvision.utils.compat import check_checkpoint_file

    mode = 'rec' if args.rec else args.mode
    if not args.text.strip():
        raise ValueError('empty --text')
    if mode == 'chat':
        return run_chat(args)
    entities = [e for e in args.entities.split(',')] if args.entities else None
    make_prompt(args.text, mode, entities)  # text, inputs, device and weights: before the model loads
    files = list_images(args.inputs)
    check_device(args.device)
    check_checkpoint_file(args.weights)
    model = init_detector(args.config, args.weights, device=args.device, cfg_options=args.cfg_options)
    os.makedirs(osp.join(args.out_dir, 'vis'), exist_ok=True)
    os.makedirs(osp.join(args.out_dir, 'preds'), exist_ok=True)
    if len(files) == 1:
        written = [predict_one(model, files[0], args, mode, entities)]
    else:
        written, failed = [], []
        for path in tqdm(files, desc='demo'):
            try:
                written.append(predict_one(model, path, args, mode, entities))
            except (ValueError, OSError, RuntimeError) as err:  # go on with the other images
                failed.append(f'{path} ({one_line(err)})')
                print(f'failed: {failed[-1]}', file=sys.stderr)
    print(f'wrote {len(written)} image(s) to {osp.join(args.out_dir, "vis")}')
    if len(written) < len(files):
        raise DemoFailures(f'{len(failed)} of {len(files)} image(s) failed: {"; ".join(failed)}')
    return written


def run_chat(args):
    """``--mode chat``: the config's multimodal LLM answers ``--text`` about each image; the answers are printed
    and saved in ``OUT_DIR/preds/<name>.json``. Returns the json paths."""
    from llmvision.apis.chat import chat, init_lmm
    from llmvision.apis.inference import check_device
    from llmvision.utils.compat import check_checkpoint_file

    files = list_images(args.inputs)
    check_device(args.device)
    check_checkpoint_file(args.weights)
    model = init_lmm(args.config, args.weights, device=args.device, cfg_options=args.cfg_options)
    os.makedirs(osp.join(args.out_dir, 'preds'), exist_ok=True)
    written = []
    for path in files:
        extra = {}
        if hasattr(model, 'ref_decoders'):  # REF-VLM: the answer's boxes / keypoints drawn in OUT_DIR/vis/
            answer, extra = ref_vlm_chat_and_draw(model, path, args)
        else:
            answer = chat(model, path, args.text)
        out = osp.join(args.out_dir, 'preds', osp.splitext(osp.basename(path))[0] + '.json')
        with open(out, 'w') as f:
            json.dump(dict(image=path, mode='chat', question=args.text, answer=answer, **extra), f, indent=1)
        print(f'{path}\nanswer: {answer}')
        written.append(out)
    print(f'wrote {len(written)} answer(s) to {osp.join(args.out_dir, "preds")}')
    return written


def ref_vlm_chat_and_draw(model, path: str, args):
    """A REF-VLM answer: draw its triplets into ``OUT_DIR/vis/<name>.png``; returns ``(answer, json extras)``."""
    import cv2

    from llmvision.apis.ref_vlm_chat import ref_vlm_chat
    from llmvision.visualization import draw_ref_answer
    answer, triplets = ref_vlm_chat(model, path, args.text)
    os.makedirs(osp.join(args.out_dir, 'vis'), exist_ok=True)
    drawn = draw_ref_answer(read_bgr(path)[..., ::-1], triplets)
    cv2.imwrite(osp.join(args.out_dir, 'vis', osp.splitext(osp.basename(path))[0] + '.png'), drawn[..., ::-1])
    return answer, dict(triplets=[{k: v.tolist() if hasattr(v, 'tolist') else v for k, v in t.items()}
                                  for t in triplets])


def predict_one(model, path: str, args, mode: str, entities) -> str:
    """Predict, draw and write one image; returns the drawn image's path."""
    import cv2

    from llmvision.apis import draw_detections, inference_detector

    image = read_bgr(path)
    sample = inference_detector(model, image, args.text, mode=mode, entities=entities)
    pred = sample.pred_instances
    names = sample.metainfo['entities']
    labels = pred.labels.tolist()
    keep = [i for i, s in enumerate(pred.scores.tolist()) if s >= args.pred_score_thr or mode == 'rec']
    drawn = draw_detections(image[..., ::-1], pred.bboxes[keep].cpu().numpy(),
                            [names[labels[i]] for i in keep], [pred.scores[i].item() for i in keep])
    stem = osp.splitext(osp.basename(path))[0]
    vis_path = osp.join(args.out_dir, 'vis', stem + '.png')
    cv2.imwrite(vis_path, drawn[..., ::-1])
    record = dict(image=path, mode=mode, text=args.text, entities=names,
                  bboxes=[[round(v, 2) for v in b] for b in pred.bboxes.tolist()],
                  scores=[round(s, 4) for s in pred.scores.tolist()], labels=labels,
                  label_names=[names[i] for i in labels])
    with open(osp.join(args.out_dir, 'preds', stem + '.json'), 'w') as f:
        json.dump(record, f, indent=1)
    return vis_path


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (FileNotFoundError, ValueError, KeyError, LookupError, OSError, DemoFailures) as err:
        print(f'error: {one_line(err)}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
