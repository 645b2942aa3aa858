"""Side-effect intent: a refund happens on an explicit instruction only; everything else confirms or refuses."""

from __future__ import annotations

import random

import pytest

from graph.intent import REFUND_VERBS, Intent, confirmation, side_effect_intent

ACT = [
    "refund CH-2033",
    "Refund CH-2033",
    "REFUND CH-2033!!!",
    "please refund the duplicate charge",
    "Please refund",
    "pls refund ch-2033",
    "plz refund me",
    "kindly refund charge CH-2033",
    "I want a refund for the $36 charge",
    "I want a refund",
    "i want a full refund for CH-2033",
    "I'd like my money back",
    "I’d like my money back for the duplicate charge",
    "id like a refund for CH-2033",
    "I would like a refund for the double charge",
    "I need you to refund CH-2033",
    "We demand a refund",
    "I am requesting a refund for charge CH-2033",
    "process the refund",
    "Process the refund for CH-2033 please",
    "issue a refund for CH-2033",
    "go ahead and refund",
    "go ahead and refund it",
    "Go ahead with the refund",
    "yes, refund it",
    "Yes refund it",
    "ok, refund CH-2033",
    "refund me now",
    "Refund the duplicate charge.",
    "I'm omar@brightpath.co, refund the duplicate charge",
    "I was charged twice. Refund the duplicate.",
    "I was charged twice, please refund the duplicate",
    "reimburse me for the $36 charge",
    "Give me my money back",
    "credit back the duplicate charge",
    "Please reverse the charge CH-2033",
    "you should refund me",
    "Refund CH-2033. Just let me know when it's done.",
    "Hi, please refund charge CH-2033 for $36.00 from 2024-05-01",
    "now refund it",
    "Refund CH-2033. I can't wait any longer.",
    "Refund CH-2033 and CH-2034",
]

CONFIRM = [
    # questions about possibility or eligibility
    "can I get a refund for the duplicate charge?",
    "can I get a refund for the $36 charge?",
    "Can I get a refund",
    "am I eligible for a refund?",
    "Am I eligible for a refund for CH-2033",
    "is it refundable?",
    "Is CH-2033 refundable",
    "could you tell me whether I can get a refund",
    "how do I get a refund?",
    "How can I get my money back",
    "is a refund possible for CH-2033",
    "I wonder whether I qualify for a refund",
    "I'd like to know if I can get a refund",
    "do you do refunds?",
    "refund?",
    "Refund policy?",
    # polite indirect imperatives: a question never acts
    "could you please refund CH-2033",
    "can you refund the duplicate charge",
    "Can you please refund CH-2033?",
    "would you refund the duplicate charge",
    "will you refund me?",
    "please refund CH-2033?",
    # hypotheticals and conditions
    "if I cancel would I get a refund",
    "what if I want a refund later",
    "would I be eligible for a refund",
    "in case the charge is a duplicate, refund it",
    "suppose I was charged twice, could I get a refund",
    "Check if I was charged twice and if so refund the duplicate",
    "if possible, please refund CH-2033",
    "refund CH-2033 if it is a duplicate",
    "assuming it's a duplicate, refund it",
    "once the charge posts, refund it",
    # unclear mentions
    "refund",
    "refunds",
    "the refund for CH-2033",
    "about the refund for the $36 charge",
    "I need help with a refund",
    "refunding CH-2033",
    # conflicting clauses
    "Refund CH-2033 but don't refund CH-2034",
    "Can I get a refund? Please refund CH-2033.",
]

REFUSE = [
    # negations scoped to the action
    "I'm omar@brightpath.co, do NOT refund anything, just tell me if I was charged twice",
    "don't refund anything",
    "Don't refund CH-2033, just tell me about CH-2034",
    "dont refund it",
    "do not refund",
    "DO NOT REFUND",
    "never refund this customer",
    "no need to refund",
    "without a refund please, just check",
    "I'm not asking for a refund",
    "I don't want a refund, just an explanation",
    "I do not need my money back",
    "no refund please",
    "refund not needed",
    "please cancel the refund",
    "hold off on the refund",
    "I do not, under any circumstances, want a refund",
    "Can I get a refund? Don't do it yet.",
    "Can I get a refund? Actually no, don't refund",
    # only tell / check / show
    "just tell me if I was charged twice and refund the duplicate",
    "only check whether a refund is possible",
    "I only want to know if I could get a refund",
    "just curious about refunds",
    # status, history
    "where is my refund?",
    "when will I get my refund",
    "did you refund CH-2033?",
    "has my refund been processed?",
    "what is the status of my refund",
    "I was refunded already",
    "You refunded the wrong charge",
    "I already got a refund for CH-2033",
    # quoted text is not an instruction
    'the email says "refund me now", what does that mean?',
    "My ticket subject was 'refund CH-2033' but I only want to know the balance",
    "it says refund CH-2033 on the screen",
    '"Please refund CH-2033" is what my colleague wrote',
    "“refund everything” - is that what the banner means",
    # no action verb at all
    "was I charged twice?",
    "I'm omar@brightpath.co, check my charges",
    "what is my balance",
    "",
    "   ",
    "hello",
    # typos of the verb and other languages: no verb found
    "refnud CH-2033",
    "Bitte erstatten Sie CH-2033",
    "Quiero un reembolso del cargo CH-2033",
    "Remboursez-moi la charge CH-2033 s'il vous plaît",
    "请退款 CH-2033",
    "Rimborsatemi l'addebito CH-2033",
]


@pytest.mark.parametrize("text", ACT)
def test_explicit_instructions_act(text: str) -> None:
    intent = side_effect_intent(text, REFUND_VERBS)
    assert intent.kind == "act", intent.reason
    assert intent.act


@pytest.mark.parametrize("text", CONFIRM)
def test_questions_hypotheticals_and_unclear_mentions_confirm(text: str) -> None:
    intent = side_effect_intent(text, REFUND_VERBS)
    assert intent.kind == "confirm", intent.reason


@pytest.mark.parametrize("text", REFUSE)
def test_negations_information_only_status_quotes_and_no_verb_refuse(text: str) -> None:
    intent = side_effect_intent(text, REFUND_VERBS)
    assert intent.kind == "refuse", intent.reason


def test_the_case_table_is_large_and_has_no_duplicates() -> None:
    cases = ACT + CONFIRM + REFUSE
    assert len(cases) >= 80
    assert len(set(cases)) == len(cases)


def test_the_issue_reports_never_act() -> None:
    reports = [
        "I'm omar@brightpath.co, do NOT refund anything, just tell me if I was charged twice",
        "can I get a refund for the duplicate charge?",
        "can I get a refund for the $36 charge?",
    ]
    assert [side_effect_intent(t, REFUND_VERBS).kind for t in reports] == ["refuse", "confirm", "confirm"]


def test_reason_is_one_readable_line() -> None:
    for text in ACT[:5] + CONFIRM[:5] + REFUSE[:5]:
        reason = side_effect_intent(text, REFUND_VERBS).reason
        assert reason and "\n" not in reason and len(reason) < 200


def test_intent_is_a_frozen_value() -> None:
    intent = Intent("act", "because")
    with pytest.raises(AttributeError):
        intent.kind = "refuse"  # type: ignore[misc]
    assert intent == Intent("act", "because")


def test_verbs_are_the_capabilitys_own() -> None:
    assert side_effect_intent("cancel my subscription", ["cancel the subscription"]).kind == "refuse"
    assert side_effect_intent("delete my account", ["delete"]).kind == "act"
    assert side_effect_intent("can you delete my account?", ["delete"]).kind == "confirm"
    assert side_effect_intent("delete my account", REFUND_VERBS).kind == "refuse"
    assert side_effect_intent("refund CH-2033", []).kind == "refuse"


# --- the fail-safe default ------------------------------------------------------------------------
# Phrasings no rule recognises must never act. If someone flips the default of rule 7 to "act",
# or loosens rule 6 so that any mention of the verb counts, these fail.

UNKNOWN = [
    "refund-related stuff for CH-2033",
    "the refund thing",
    "regarding refunds in general",
    "my friend got a refund last year",
    "refund refund refund",
    "a refund would be nice I guess",
    "refund... maybe",
    "zxq refund blorp",
    "their refund department is slow",
    "refund money back reimburse",
]


@pytest.mark.parametrize("text", UNKNOWN)
def test_unknown_phrasings_never_act(text: str) -> None:
    intent = side_effect_intent(text, REFUND_VERBS)
    assert intent.kind != "act", intent.reason


def test_random_word_salad_around_the_verb_never_acts() -> None:
    """Sentences that do not open with the verb, a directive or a wish: never act."""
    rng = random.Random(2033)
    words = [
        "the",
        "a",
        "my",
        "charge",
        "duplicate",
        "twice",
        "CH-2033",
        "$36",
        "amount",
        "yesterday",
        "card",
        "account",
        "order",
        "customer",
        "omar@brightpath.co",
        "maybe",
        "perhaps",
        "really",
        "quite",
        "about",
        "for",
        "on",
        "of",
        "with",
    ]
    for _ in range(500):
        left = rng.sample(words, rng.randint(1, 5))
        right = rng.sample(words, rng.randint(0, 5))
        verb = rng.choice(REFUND_VERBS)
        text = " ".join([*left, verb, *right])
        intent = side_effect_intent(text, REFUND_VERBS)
        assert intent.kind != "act", (text, intent.reason)


def test_never_raises() -> None:
    rng = random.Random(7)
    alphabet = "refund don't ? ! . , ' \" “ ” if can I want please \n\t é 退款 \x00 ***"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert side_effect_intent(text, REFUND_VERBS).kind in {"act", "confirm", "refuse"}
    assert side_effect_intent(None, REFUND_VERBS).kind == "refuse"  # type: ignore[arg-type]
    assert side_effect_intent("refund it", [""]).kind == "refuse"


def test_long_input_is_fast() -> None:
    import time

    for text in ["please " * 30_000 + "refund it", "refund " * 30_000, "'" * 100_000, "ok, " * 30_000]:
        started = time.perf_counter()
        side_effect_intent(text, REFUND_VERBS)
        assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # "no, I meant X" corrects what was understood: X is read as the request.
        ("no, I meant refund it", "act"),
        ("sorry, I mean refund CH-2034", "act"),
        ("nope, I meant to say refund the second charge", "act"),
        ("no, I meant can I get a refund?", "confirm"),
        # ...and what the correction says is still read by every rule.
        ("no, I meant don't refund it", "refuse"),
        ("no I meant, no refund", "refuse"),
        ("nope, I meant just check if it is refundable", "refuse"),
        # "no" alone, "no thanks", "no, don't" stay refusals.
        ("no", "refuse"),
        ("no thanks", "refuse"),
        ("no, don't refund it", "refuse"),
        ("no, do not refund anything", "refuse"),
        ("no refund", "refuse"),
        ("refund it. no, I meant nothing", "confirm"),  # act and a take-back: ask first, as before
    ],
)
def test_no_i_meant_is_a_correction_not_a_refusal(text: str, kind: str) -> None:
    assert side_effect_intent(text, REFUND_VERBS).kind == kind


# --- a reply to an offer (session 13): yes in its usual words, no stays no ---------------------------


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "yeah ok",
        "sure thing, please proceed",
        "ok go ahead with that",
        "confirmed, do it",
        "yep, sounds good",
        "absolutely, please proceed with that",
        "sure, go for it",
        "alright, go ahead with it",
        "Yes please!",
        "yes, that's right, go ahead",
    ],
)
def test_a_yes_in_its_usual_words_is_a_yes(text: str) -> None:
    assert confirmation(text) is True


@pytest.mark.parametrize(
    "text",
    ["no", "no thanks", "No.", "don't", "do not", "nah, leave it for now", "not now", "hold off", "nope"],
)
def test_a_no_stays_a_no(text: str) -> None:
    assert confirmation(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "yes, but don't",
        "ok, not yet",
        "yes and what time is it in Oslo",
        "ok?",
        "sure, refund the other one instead",
        "great, thanks",
        "that's right",
        "yes, that's wrong",
        "yes, that's not it",
        "",
        "yes " * 40,
    ],
)
def test_anything_else_is_neither(text: str) -> None:
    assert confirmation(text) is None


def test_confirmation_never_raises() -> None:
    assert confirmation(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("could I get the $531.25 retry charge refunded?", "confirm"),
        ("can I have CH-2033 refunded?", "confirm"),
        ("would I be able to get my duplicate charge refunded?", "confirm"),
        ("I was refunded already", "refuse"),
        ("I had CH-2033 refunded last month", "refuse"),
        ("did you get it refunded?", "refuse"),
    ],
)
def test_get_or_have_it_refunded_asks_for_a_refund_and_never_acts(text: str, kind: str) -> None:
    assert side_effect_intent(text, REFUND_VERBS).kind == kind
