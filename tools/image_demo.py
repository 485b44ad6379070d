"""Draw a detector's predictions on an image or a folder of images.

    # open-vocabulary detection: a category list
    python tools/image_demo.py IMG_OR_DIR CONFIG --weights CKPT --text "red circle . blue square ."
    # phrase grounding: a caption; entities from nltk noun phrases, or given
    python tools/image_demo.py IMG CONFIG --weights CKPT --mode grounding \
        --text "a red circle next to a blue square" --entities "red circle,blue square"
    # referring expression: one box
    python tools/image_demo.py IMG CONFIG --weights CKPT --rec --text "the red circle on the left"

Writes ``OUT_DIR/vis/<name>.png`` (boxes, labels, scores) and ``OUT_DIR/preds/<name>.json``.
Bad input (missing image, unreadable file, empty text, weights that do not match the config)
ends with a one-line error and exit status 1.
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
    parser.add_argument('--weights', required=True, help='checkpoint (ours, HF or mmdet format)')
    parser.add_argument('--text', required=True,
                        help='categories "a . b ." (detection), a caption (grounding) or an '
                        'expression (rec)')
    parser.add_argument('--mode', choices=['detection', 'grounding', 'rec'], default='detection')
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


def run(args):
    import cv2
    from tqdm import tqdm

    import llmvision  # noqa: F401
    from llmvision.apis import draw_detections, inference_detector, init_detector

    mode = 'rec' if args.rec else args.mode
    if not args.text.strip():
        raise ValueError('empty --text')
    files = list_images(args.inputs)
    model = init_detector(args.config, args.weights, device=args.device, cfg_options=args.cfg_options)
    entities = [e for e in args.entities.split(',')] if args.entities else None
    os.makedirs(osp.join(args.out_dir, 'vis'), exist_ok=True)
    os.makedirs(osp.join(args.out_dir, 'preds'), exist_ok=True)
    written = []
    for path in tqdm(files, desc='demo', disable=len(files) == 1):
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
        written.append(vis_path)
    print(f'wrote {len(written)} image(s) to {osp.join(args.out_dir, "vis")}')
    return written


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (FileNotFoundError, ValueError, KeyError, LookupError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        message = ' | '.join(line.strip() for line in str(message).splitlines() if line.strip())
        print(f'error: {message}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
