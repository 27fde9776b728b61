"""Write the shipped fine-tuning example: ``support.jsonl`` and ``support-suite.yaml``.

Licence: CC0-1.0. Written by the Crossroads project; every ticket and reply is invented
(no real customer data). Regenerate with ``python examples/tune/make_support.py``; the
output is deterministic.

The task: answer a customer-support ticket of the fictional shop "Crossroads" in the
house style --

    Hi there,

    <two short sentences that deal with the ticket>

    Category: <billing|shipping|returns|technical|account>
    — Crossroads Support

There is no system prompt, in the data or in the suite: the model's chat template adds its
default one, exactly as it does for ``crossroads chat local/NAME "..."``, so the tuned model
answers in the house style however it is called.

The training tickets and the held-out evaluation tickets use different products, order
numbers and (for a third of the suite) phrasings never seen in training, so the suite
measures whether the style and the routing carry over, not whether lines were memorised.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SIGN_OFF = "— Crossroads Support"

TRAIN_PRODUCTS = [
    "blender", "desk lamp", "rain jacket", "coffee grinder", "backpack", "kettle",
    "phone case", "yoga mat", "wireless speaker", "winter coat", "water bottle", "toaster",
    "hiking boots", "office chair", "bike helmet", "electric toothbrush",
]  # fmt: skip
EVAL_PRODUCTS = ["rice cooker", "laptop stand", "wool scarf", "garden hose", "table fan"]

# category -> [(ticket template, reply template)]; {product} and {order} are filled in.
TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "billing": [
        (
            "I was charged twice for order {order} ({product}). Please fix this.",
            "Sorry about the double charge on order {order}. We have refunded the extra payment "
            "and it will show on your statement within 5 business days.",
        ),
        (
            "Can I get an invoice with my company name for order {order}? It was a {product}.",
            "Of course. We have emailed a company invoice for order {order} to the address on "
            "your account.",
        ),
        (
            "My card was declined when I tried to pay for a {product}, but the bank says it "
            "is fine.",
            "Sorry for the trouble at checkout. Please try again in a private browser window, or "
            "pay by PayPal; a declined attempt is never charged.",
        ),
        (
            "Why is the price of the {product} on my receipt higher than on your website?",
            "Thanks for spotting this. The website price changed after your order, so we have "
            "refunded the difference to your card.",
        ),
        (
            "I used a discount code for the {product} but it was not applied to order {order}.",
            "Sorry the code did not apply. We have refunded the discount for order {order}; "
            "expect it within 5 business days.",
        ),
        (
            "I want to pay for my {product} in three instalments. Is that possible?",
            'Yes. Choose "Pay in 3" at checkout; the first instalment is taken when the '
            "{product} ships.",
        ),
    ],
    "shipping": [
        (
            "My {product} (order {order}) was due on Monday and still has not arrived.",
            "Sorry for the delay with order {order}. The courier has your parcel and expects to "
            "deliver it within 2 days; we will email you the new tracking link.",
        ),
        (
            "The tracking for order {order} has not changed for a week. Where is my {product}?",
            "Thanks for your patience. We have opened a search with the courier for order "
            "{order} and will send a replacement {product} if it is not found within 3 days.",
        ),
        (
            "I typed the wrong delivery address for order {order}. Can you change it?",
            "No problem. We have updated the delivery address for order {order}; the {product} "
            "has not shipped yet.",
        ),
        (
            "Do you deliver the {product} to Norway, and how long does it take?",
            "Yes, we deliver to Norway. Delivery takes 4 to 6 business days and the shipping "
            "cost is shown at checkout.",
        ),
        (
            "The courier says order {order} was delivered but I never got my {product}.",
            "Sorry to hear that. We have asked the courier for the delivery photo of order "
            "{order} and will resend the {product} if it cannot be found.",
        ),
        (
            "Can I pick up my {product} from a parcel locker instead of home delivery?",
            'Yes. Choose "Parcel locker" at checkout and pick the locker nearest to you.',
        ),
    ],
    "returns": [
        (
            "The {product} from order {order} arrived broken. I want to return it.",
            "Sorry the {product} arrived damaged. We have emailed you a free return label for "
            "order {order} and will send a new one as soon as it is scanned.",
        ),
        (
            "I ordered the wrong size of {product}. How do I exchange it?",
            "Happy to help. Start an exchange under Orders, pick the new size, and we will ship "
            "it when the courier scans your return.",
        ),
        (
            "Can I still return the {product} I bought 25 days ago? It is unused.",
            "Yes, you have 30 days to return unused items. Start the return under Orders and "
            "print the free label.",
        ),
        (
            "Where do I print the return label for my {product} (order {order})?",
            "You can print the label under Orders > {order} > Return. We refund you within 3 "
            "days of receiving the {product}.",
        ),
        (
            "You sent me a blue {product} but I ordered a black one. I want to send it back.",
            "Sorry for the mix-up. We have emailed a free return label and the black {product} "
            "is already on its way to you.",
        ),
        (
            "I returned a {product} two weeks ago and still have no refund for order {order}.",
            "Sorry for the wait. Your return for order {order} arrived yesterday and the refund "
            "has been issued today.",
        ),
    ],
    "technical": [
        (
            "The app crashes every time I open my order for the {product}.",
            "Sorry about the crash. Please update the app to the latest version; if it still "
            "crashes, reinstall it and your orders will reappear after you log in.",
        ),
        (
            "My new {product} will not turn on, even after charging it overnight.",
            "Sorry it will not start. Hold the power button for 10 seconds to reset the "
            "{product}; if nothing happens, reply and we will replace it.",
        ),
        (
            "The website shows an error when I add the {product} to my basket.",
            "Thanks for reporting this. Please clear your browser cache and try again; our team "
            "is fixing the basket error today.",
        ),
        (
            "The {product} keeps disconnecting from Bluetooth on my phone.",
            "Sorry for the trouble. Remove the {product} from your phone's Bluetooth list, "
            "restart both and pair them again.",
        ),
        (
            "After the update, the {product} app no longer shows my settings.",
            "Thanks for letting us know. Log out and back in to reload your settings; a fix for "
            "the update is coming this week.",
        ),
        (
            "The instructions for the {product} are missing a page. How do I set it up?",
            "Sorry about the missing page. The full manual for the {product} is on our website "
            "under Help > Manuals.",
        ),
    ],
    "account": [
        (
            "I forgot my password and the reset email never arrives.",
            "Sorry for the trouble. Please check your spam folder; we have also sent a new "
            "reset link that is valid for 1 hour.",
        ),
        (
            "How do I change the email address on my account? I ordered a {product} with the "
            "old one.",
            "You can change it under Account > Profile. Your orders, including the {product}, "
            "stay linked to your account.",
        ),
        (
            "Please delete my account and all my personal data.",
            "We have started the deletion of your account. All personal data is erased within "
            "30 days and we will email you when it is done.",
        ),
        (
            "My account is locked after too many login attempts.",
            "Sorry for the lockout. Your account unlocks automatically after 30 minutes, or "
            "right away with the reset link we just emailed you.",
        ),
        (
            "Can I merge my two accounts? One has my {product} order {order}.",
            "Yes. We have merged your accounts, and order {order} now shows in the one you "
            "use to log in.",
        ),
        (
            "I want to turn on two-factor login for my account.",
            'Great idea. Go to Account > Security and choose "Two-factor login" to link an '
            "authenticator app.",
        ),
    ],
}

# Phrasings that appear only in the evaluation suite.
EVAL_ONLY: dict[str, list[str]] = {
    "billing": [
        "Hello, I think you billed me the wrong amount for my {product}. Can you check?",
        "Please refund the shipping fee on order {order}; it was supposed to be free.",
    ],
    "shipping": [
        "It has been ten days and my {product} is nowhere. Order {order}.",
        "Could you ship my {product} to my office instead of my home?",
    ],
    "returns": [
        "The {product} is not what I expected. Can I send it back for a refund?",
        "How long do I have to return a {product} that I have not opened?",
    ],
    "technical": [
        "The {product} makes a loud noise and stops after a minute.",
        "I cannot log in to the app on my tablet; it just shows a blank screen.",
    ],
    "account": [
        "I no longer receive your emails about my account. What happened?",
        "How do I update the phone number on my profile?",
    ],
}


def reply(category: str, body: str) -> str:
    return f"Hi there,\n\n{body}\n\nCategory: {category}\n{SIGN_OFF}"


def order_number(rng: random.Random) -> str:
    return f"#{rng.randint(10000, 99999)}"


def training_examples(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for category, templates in TEMPLATES.items():
        for index, (ticket, body) in enumerate(templates):
            for copy in range(3):  # 3 products per template: 5 x 6 x 3 = 90 examples
                product = TRAIN_PRODUCTS[(index * 3 + copy) % len(TRAIN_PRODUCTS)]
                slots = {"product": product, "order": order_number(rng)}
                rows.append(
                    {
                        "messages": [
                            {"role": "user", "content": ticket.format(**slots)},
                            {"role": "assistant", "content": reply(category, body.format(**slots))},
                        ]
                    }
                )
    rng.shuffle(rows)
    return rows


def suite_items(rng: random.Random) -> list[dict[str, object]]:
    items = []
    for category, templates in TEMPLATES.items():
        tickets = [t for t, _ in templates[:3]] + EVAL_ONLY[category]
        for index, ticket in enumerate(tickets):
            slots = {
                "product": EVAL_PRODUCTS[index % len(EVAL_PRODUCTS)],
                "order": order_number(rng),
            }
            items.append(
                {
                    "id": f"{category}-{index + 1}",
                    "expected": f"Category: {category}",
                    "tags": [
                        f"category:{category}",
                        "seen-phrasing" if index < 3 else "new-phrasing",
                    ],
                    "ticket": ticket.format(**slots),
                }
            )
    return items


SUITE_HEADER = """\
# The shipped fine-tuning example's evaluation suite (see docs/tuning.md).
# Licence: CC0-1.0, written by the Crossroads project; generated by make_support.py.
#
# Held-out tickets (products, order numbers and, for items tagged new-phrasing, wordings that
# are not in support.jsonl). A reply passes when it follows the house style of the shop:
# it opens with "Hi there,", ends with the sign-off "— Crossroads Support", and carries the
# right "Category: <name>" line. Each check is one scorer, so the per-item score is the share
# of checks met and "pass" means all three.
#
#   crossroads tune local/smollm2 --data examples/tune/support.jsonl \\
#       --eval-suite examples/tune/support-suite.yaml --out smollm2-support
"""


def main() -> None:
    import yaml

    rng = random.Random(20261126)
    rows = training_examples(rng)
    with (HERE / "support.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    suite = {
        "name": "support-style",
        "description": (
            "Support replies in the Crossroads house style (greeting, category, sign-off)"
        ),
        "licence": "CC0-1.0, written by the Crossroads project",
        "defaults": {"temperature": 0, "max_tokens": 80},
        "prompt": "{{ ticket }}",
        "scorers": [
            {"type": "regex", "name": "greeting", "pattern": r"^\s*Hi there,"},
            {"type": "regex", "name": "sign-off", "pattern": r"— Crossroads Support\s*$"},
            {"type": "contains", "name": "category", "case_sensitive": True},
        ],
        "items": suite_items(rng),
    }
    text = yaml.safe_dump(suite, sort_keys=False, allow_unicode=True, width=100)
    (HERE / "support-suite.yaml").write_text(SUITE_HEADER + text, encoding="utf-8")
    print(f"wrote {len(rows)} training examples and {len(suite['items'])} suite items")


if __name__ == "__main__":
    main()
