"""embedded-chat answers identically through vlmkit's chat layer and through plain transformers.

    python benchmarks/embedded_chat_identical.py [N]

Asks N world conversations per eval-chat task (world seed 4242) greedily through
``load_chat_model("embedded-chat")`` and through ``PlainLlavaChat`` (AutoModelForImageTextToText +
AutoProcessor and the directory's chat template, nothing else) and counts identical answers.
docs/chat.md quotes N=8: 96 of 96.
"""
import sys

from PIL import Image

from vlmkit.classify.world_chat_eval import eval_examples, to_messages
from vlmkit.data import world_chat as wc
from vlmkit.models.chat_registry import load_chat_model
from vlmkit.models.embedded_chat_plain import PlainLlavaChat

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
examples = eval_examples(n, 4242)
images, convs = {}, []
for items in examples.values():
    for e in items:
        for r in wc.turn_images(e.prompt):
            images.setdefault(r, Image.fromarray(wc.render_scene(r)))
        convs.append(to_messages(e.prompt, images))
layer = load_chat_model("embedded-chat")
plain = PlainLlavaChat.load("embedded-chat")
a = layer.generate(convs, max_new_tokens=12)
b = []
for i in range(0, len(convs), 16):
    b += plain.generate(convs[i:i + 16], max_new_tokens=12)
same = sum(x == y for x, y in zip(a, b, strict=True))
print(f"{same}/{len(convs)} identical answers (chat layer vs plain transformers)")
for x, y in zip(a, b, strict=True):
    if x != y:
        print(repr(x), repr(y))
