"""``stylestudio encoders import FILE | list``: the vision-language encoders text paths train with."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoders", help="import or list vision-language (CLIP) encoders for text paths")
    esub = p.add_subparsers(dest="encoders_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    i = esub.add_parser("import", help="register your own CLIP weights (OpenAI or open_clip format)",
                        description="Reads an OpenAI-format state dict, an open_clip checkpoint (.pt, .bin), a "
                                    ".safetensors file (also Hugging Face transformers CLIPs) or an OpenAI "
                                    "TorchScript archive without running anything "
                                    "in it, infers the architecture from its shapes and stores it in the user "
                                    "data folder. ViT image towers only.")
    i.add_argument("file", type=Path)
    i.add_argument("--name", default=None, help="the encoder's name (default: the file's name)")
    i.add_argument("--activation", choices=("quickgelu", "gelu"), default="quickgelu",
                   help="MLP activation: quickgelu for OpenAI's models (default), gelu for most open_clip-trained ones")
    i.add_argument("--replace", action="store_true", help="replace an imported encoder of the same name")
    i.set_defaults(func=cmd_import)

    ls = esub.add_parser("list", help="the encoders available")
    ls.set_defaults(func=cmd_list)


def describe(info) -> str:
    c = info.config
    if info.kind == "builtin":
        return (f"{info.name:20s} built-in face-text encoder (MiniLM-L6 text, {c['embed_dim']}-d; image side trained "
                f"on generated faces: knows only predictor-labelled attributes)")
    tower = (f"ResNet {'-'.join(str(b) for b in c['vision_blocks'])} ×{c['vision_width']}" if c.get("vision_blocks")
             else f"ViT {c['vision_layers']}×{c['vision_width']}/{c['vision_patch_size']}")
    return (f"{info.name:20s} CLIP {tower} "
            f"@{c['image_resolution']}px, text {c['transformer_layers']}×{c['transformer_width']}, "
            f"{c['embed_dim']}-d, {c['activation']}  (from {info.source})")


def cmd_import(args: argparse.Namespace) -> int:
    from ..engine.text.encoders import import_clip

    info = import_clip(args.file, args.name, args.activation, replace=args.replace)
    if info.note:
        print(f"note: {info.note}")
    print(describe(info))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..engine.text.encoders import list_encoders

    for info in list_encoders():
        print(describe(info))
    return 0
