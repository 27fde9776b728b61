"""Word-sequence rules for prompt injection and jailbreaks, in seven languages.

A rule is a sequence of slots (sets of one- or multi-word phrases) with the most words
allowed between consecutive slots, all inside one sentence. Matching works on tokens,
not characters, which keeps the cost of a 2 KB prompt in microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["BREAK", "Rule", "Slot", "match_rules", "tokens_of"]

#: The token that stands for a sentence end; no match spans it.
BREAK = "\x00"
#: One character to one ASCII character, so ``str.translate`` takes its fast path.
_TOKEN_TABLE = str.maketrans(
    {**dict.fromkeys(".!?;\n", BREAK), **dict.fromkeys(',:()[]{}"*`_<>|/\\', " ")}
)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": " ", "”": " ", "«": " ", "»": " "})


@lru_cache(maxsize=16)
def tokens_of(lowered: str) -> tuple[str, ...]:
    """Words of lower-cased text, with ``BREAK`` between sentences (cached: the checks
    of one request share it)."""
    if not lowered.isascii():
        lowered = lowered.translate(_QUOTES)
    return tuple(lowered.translate(_TOKEN_TABLE).replace(BREAK, f" {BREAK} ").split())


class Slot:
    """A set of phrases; ``at(tokens, i)`` is the length of the one starting at ``i``."""

    __slots__ = ("lengths", "phrases", "singles")

    def __init__(self, *texts: str) -> None:
        phrases = {tuple(p.split()) for t in texts for p in t.split("|") if p.strip()}
        self.phrases = frozenset(phrases)
        self.singles = frozenset(p[0] for p in phrases if len(p) == 1)
        self.lengths = tuple(sorted({len(p) for p in phrases if len(p) > 1}, reverse=True))

    def at(self, tokens: Sequence[str], i: int) -> int:
        if i >= len(tokens):
            return 0
        for n in self.lengths:
            if tuple(tokens[i : i + n]) in self.phrases:
                return n
        return 1 if tokens[i] in self.singles else 0

    def firsts(self) -> frozenset[str]:
        return frozenset(p[0] for p in self.phrases)

    def words(self) -> frozenset[str]:
        return frozenset(w for p in self.phrases for w in p)

    def __or__(self, other: Slot) -> Slot:
        out = Slot()
        out.phrases = self.phrases | other.phrases
        out.singles = self.singles | other.singles
        out.lengths = tuple(sorted(set(self.lengths) | set(other.lengths), reverse=True))
        return out


@dataclass(frozen=True)
class Rule:
    """``slots[k+1]`` starts at most ``gaps[k]`` tokens after ``slots[k]`` ends."""

    category: str
    score: int  # 2: enough alone; 1: needs another signal
    slots: tuple[Slot, ...]
    gaps: tuple[int, ...] = ()
    #: One of these must occur inside the match or within ``after`` tokens after it.
    need: Slot | None = None
    after: int = 0
    #: None of these may occur inside the match.
    forbid: Slot | None = None
    #: The token right after the match must not be one of these.
    next_not: frozenset[str] = frozenset()
    #: The slot whose words gate the rule (the rarest); default: the last.
    key: int = -1
    #: Gate words given explicitly (default: the longest word of each key-slot phrase).
    trigger: str = ""
    firsts: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "firsts", self.slots[0].firsts())

    def triggers(self) -> frozenset[str]:
        if self.trigger:
            return frozenset(self.trigger.split())
        return frozenset(max(reversed(p), key=len) for p in self.slots[self.key].phrases)

    def match(self, tokens: Sequence[str], starts: Sequence[int]) -> bool:
        for i in starts:
            n = self.slots[0].at(tokens, i)
            if n and self._extend(1, i + n, tokens, i):
                return True
        return False

    def _extend(self, k: int, pos: int, tokens: Sequence[str], first: int) -> bool:
        if k == len(self.slots):
            return self._accept(first, pos, tokens)
        slot, limit = self.slots[k], min(len(tokens), pos + self.gaps[k - 1] + 1)
        for j in range(pos, limit):
            if tokens[j] == BREAK:
                return False
            n = slot.at(tokens, j)
            if n and self._extend(k + 1, j + n, tokens, first):
                return True
        return False

    def _accept(self, first: int, end: int, tokens: Sequence[str]) -> bool:
        if self.forbid is not None and any(self.forbid.at(tokens, j) for j in range(first, end)):
            return False
        if self.need is not None and not any(
            self.need.at(tokens, j)
            for j in range(first, min(len(tokens), end + self.after))
            if tokens[j] != BREAK
        ):
            return False
        return not (self.next_not and end < len(tokens) and tokens[end] in self.next_not)


def _positions(tokens: Sequence[str], word: str) -> list[int]:
    """Every index of ``word`` (``list.index`` runs in C; most texts have few hits)."""
    out: list[int] = []
    at = -1
    index = tokens.index
    while True:
        try:
            at = index(word, at + 1)
        except ValueError:
            return out
        out.append(at)


def match_rules(
    rules: Sequence[Rule],
    tokens: Sequence[str],
    words: frozenset[str] | set[str],
    hits: dict[str, int],
) -> None:
    """Record ``category -> score`` for every rule that matches (only rules whose trigger
    words occur in ``words`` are tried)."""
    triggered = {id(r) for w in TRIGGER_WORDS.intersection(words) for r in _BY_TRIGGER[w]}
    todo = [r for r in rules if id(r) in triggered and hits.get(r.category, 0) < r.score]
    if not todo:
        return
    present = frozenset().union(*(r.firsts for r in todo)).intersection(words)
    firsts = {w: _positions(tokens, w) for w in present}
    for rule in todo:
        if hits.get(rule.category, 0) >= rule.score:
            continue
        starts = sorted(i for w in rule.firsts & firsts.keys() for i in firsts[w])
        if starts and rule.match(tokens, starts):
            hits[rule.category] = max(hits.get(rule.category, 0), rule.score)


# -- vocabulary -------------------------------------------------------------------------------
S = Slot
OVERRIDE_VERBS = S(
    "ignore|ignoring|disregard|disregarding|forget|skip|bypass|override|overlook|neglect|"
    "ignores|disregards|overrides|overriding|supersedes|replaces|cancels|voids|"
    "abandon|discard|drop|set aside|pay no attention to|do not follow|don't follow|"
    "do not obey|don't obey|stop following|no longer follow|throw out",
    "ignoriere|ignorier|ignorieren|vergiss|vergessen|missachte|missachten|übergehe|verwirf",
    "ignorez|ignores|oublie|oubliez|oublies|ne tiens pas compte|ne tenez pas compte|"
    "fais abstraction|faites abstraction|passe outre",
    "ignora|ignorad|ignorar|olvida|olvide|olvídate|olvidate|omite|omita|haz caso omiso|"
    "desobedece|descarta",
    "ignorate|ignori|dimentica|dimentichi|dimenticate|trascura|non seguire|disattendi",
    "negeer|negeren|vergeet|vergeten",
    "ignorem|esqueça|esqueca|esquece|desconsidere|desconsidera|despreze",
)
OVERRIDE_NOUNS = S(
    "instruction|instructions|prompt|prompts|rules|directions|guidelines|directives|commands|"
    "constraints|restrictions|guardrails|policy|policies|programming|orders|safety|filters|"
    "training|conditioning|system message",
    "anweisungen|instruktionen|regeln|vorgaben|befehle|richtlinien|einschränkungen|"
    "beschränkungen|systemprompt|systemprompts|systemanweisung|systemanweisungen|"
    "programmierung",
    "consignes|règles|ordres|contraintes|programmation",
    "instrucciones|reglas|indicaciones|directrices|órdenes|ordenes|restricciones|normas",
    "istruzioni|regole|indicazioni|direttive|ordini|restrizioni|vincoli",
    "instructies|regels|aanwijzingen|richtlijnen|opdrachten|beperkingen|systeemprompt",
    "instruções|instrucoes|regras|diretrizes|orientações|ordens|restrições|comandos",
)
ANCHORS = S(
    "previous|prior|above|earlier|preceding|initial|original|foregoing|system|developer|all|"
    "any|every|your|those|these|safety|content|ethical|openai|anthropic|existing|default|"
    "preprogrammed|pre-programmed|built-in|hidden|their|given|told|received|got",
    "alle|alles|bisherigen|vorherigen|vorigen|obigen|früheren|ursprünglichen|deine|ihre|sämtliche",
    "précédentes|précédents|antérieures|ci-dessus|toutes|tous|tes|vos|initiales|originales|système",
    "anteriores|previas|todas|todos|tus|sus|arriba|iniciales|sistema",
    "precedenti|tutte|tutti|tue|sopra|iniziali|originali",
    "vorige|eerdere|je|jouw|uw|bovenstaande|voorgaande|oorspronkelijke|systeem",
    "suas|tuas|acima|iniciais|originais|prévias",
)
SELF = S(
    "my|our|meine|meinen|meiner|unsere|mes|nos|mis|nuestras|mie|nostre|mijn|onze|minhas|nossas"
)

LEAK_VERBS = S(
    "reveal|print|show|display|output|repeat|recite|tell me|give me|write out|spell out|leak|"
    "dump|copy|paste|share|list|what is|what are|what was|what were|what's",
    "zeig|zeige|gib|verrate|wiederhole|nenne|schreib|schreibe",
    "montre|montrez|affiche|révèle|revele|répète|repete|donne|donnez|dis|dites|montre-moi|"
    "montrez-moi|donne-moi|donnez-moi|dis-moi|dites-moi|affiche-moi|répète-moi",
    "muestra|muéstrame|muestrame|revela|repite|dime|dame|imprime|enseña|enséñame|revélame",
    "mostra|mostrami|rivela|ripeti|dimmi|stampa|dammi|rivelami",
    "toon|geef|herhaal|onthul",
    "mostre|revele|repita|diga|imprima|mostre-me|diga-me|revele-me|mostra-me",
)
YOUR = S(
    "your|deinen|deine|deinem|ihren|ihre|ton|tes|votre|vos|tu|tus|su|sus|il tuo|i tuoi|le tue|"
    "tuo|tuoi|tue|je|jouw|uw|seu|sua|seus|suas|teu|tuas"
)
LEAK_NOUNS = S(
    "system prompt|prompt|instructions|initial prompt|system message|configuration|guidelines|"
    "hidden rules|secret rules|internal rules|original rules|initial rules",
    "systemprompt|anweisungen|instruktionen|systemnachricht",
    "consignes|message système|instrucciones|mensaje del sistema|indicaciones|istruzioni|"
    "messaggio di sistema|instructies|systeembericht|systeemprompt|instruções|instrucoes|"
    "mensagem do sistema",
)
RULE_NOUNS = S("rules|regeln|règles|reglas|regole|regels|regras")

ROLE_VERBS = S(
    "pretend|imagine|suppose|roleplay|role-play|play the role|act as|act like|behave as|"
    "simulate|you are now|from now on",
    "tu so|stell dir vor|spiel|spiele|agiere als|verhalte dich",
    "fais comme si|fais semblant|joue le rôle|agis comme",
    "finge|imagina|actúa como|actua como|haz de cuenta",
    "fingi|immagina|fai finta|comportati come|agisci come",
    "doe alsof|stel je voor|speel de rol|gedraag je als",
    "finja|aja como|faça de conta|interprete",
)
NEGATIONS = S(
    "no|without|free from|free of|not bound by|never|don't have|do not have|lack|lacks|"
    "ignore|ignores|keine|keinerlei|ohne|sans|aucune|aucun|pas de|sin|ninguna|ninguno|senza|"
    "nessuna|nessun|zonder|geen|sem|nenhuma|nenhum|non|não|nicht|niet|pas|ne"
)
LIMITS = S(
    "restrictions|limitations|limits|filter|filters|rules|guidelines|ethics|morals|censorship|"
    "content policy|content policies|policies|safety|boundaries|refusals",
    "einschränkungen|regeln|richtlinien|zensur|grenzen|restriction|règles|limites|filtres|"
    "filtre|censure|restricciones|reglas|límites|filtros|censura|restrizioni|regole|limiti|"
    "filtri|beperkingen|regels|censuur|restrições|restricoes|regras",
    "règle|regla|regola|regel|regra|restricción|restrizione|beperking|restrição|limite|"
    "limiet|filtro|richtlinie|einschränkung|ethical guidelines|moral guidelines|"
    "ethical constraints",
)
PERSONAS = S("unrestricted|unfiltered|uncensored|evil|amoral|unethical|jailbroken|dan|evilbot|"
             "antigpt|betterdan|unfiltered ai|uncensored ai")  # fmt: skip
GRANNIES = S(
    "grandma|grandmother|granny|abuela|nonna|oma|grand-mère|mamie|avó|grandpa|grandfather|"
    "granddad|grandad|abuelo|nonno|opa|grand-père|papy|avô"
)

_EXTRACT_VERBS = LEAK_VERBS | S("see|translate|encode|summarise|summarize|paraphrase|rewrite")
#: System-prompt extraction in its many indirect forms (garak's sysprompt_extraction
#: probes are a good catalogue of them).
EXTRACTION_RULES = (
    Rule("prompt_leak", 2,
         (_EXTRACT_VERBS, S("the|your|this"),
          S("system prompt|initial prompt|initial instructions|system configuration|"
            "system message|hidden prompt|original prompt|developer message")), (4, 1)),
    Rule("prompt_leak", 2,
         (_EXTRACT_VERBS | S("rot13"),
          S("you were given|you were told|you have been given|you've been given|you received|"
            "you got")), (8,), trigger="given told received got"),
    Rule("prompt_leak", 2,
         (S("what"), S("were you told|were you given|have you been told|did they tell you"),
          S("before|initially|earlier|at the beginning|first")), (0, 4), trigger="told given"),
    Rule("prompt_leak", 2,
         (S("what"),
          S("are you not supposed to|are you not allowed to|aren't you allowed to|"
            "are you hiding|were you told not to")), (0,), trigger="supposed allowed hiding"),
    Rule("prompt_leak", 2,
         (S("start|begin|complete|continue|finish"),
          S("my instructions are|i was instructed|the system prompt is|my system prompt is|"
            "my prompt is|my initial instructions|my rules are")), (8,),
         trigger="instructions instructed prompt rules"),
    Rule("prompt_leak", 2,
         (S("beginning with|starting with"), S("you are"), S("repeat|print|output|write")),
         (0, 10), trigger="beginning starting"),
    Rule("prompt_leak", 1,
         (S("repeat|print|output|copy|translate|rewrite"), S("above|previous|preceding"),
          S("text|words|instructions|lines|prompt")), (2, 0)),
    Rule("role_play", 2,
         (S("not have to|don't have to|doesn't have to|do not have to|does not have to|"
            "never have to|need not|no longer has to|no longer have to"),
          S("abide by|follow|obey|comply with|adhere to|respect"),
          S("rules|policies|guidelines|restrictions|content policy|policy|norms|laws")),
         (1, 4), key=1),
    Rule("role_play", 2,
         (S("broken free|break free|broke free|freed from|liberated from|escaped"),
          S("confines|restrictions|rules|limitations|shackles|constraints|guidelines")),
         (3,)),
    Rule("role_play", 1,
         (S("immerse yourself|step into|take on|assume"), S("role|persona|identity")), (4,)),
    Rule("instruction_override", 2,
         (S("forget|ignore|disregard|don't listen to|do not listen to"),
          S("told you|instructed you|programmed you|taught you|trained you|said to you")),
         (5,), trigger="told instructed programmed taught trained"),
    Rule("role_play", 2,
         (S("you have|you've got|you now have"), S("no|zero"), LIMITS), (0, 2)),
    Rule("role_play", 2,
         (S("you are|you're|you are now"), S("allowed to|permitted to|free to|able to"),
          S("say anything|do anything|answer anything|ignore|break")), (0, 1),
         trigger="allowed permitted free"),
)  # fmt: skip

RULES: tuple[Rule, ...] = (
    Rule(
        "instruction_override",
        2,
        (OVERRIDE_VERBS, OVERRIDE_NOUNS),
        (8,),
        need=ANCHORS,
        after=3,
        forbid=SELF,
        key=0,
    ),
    Rule(
        "instruction_override",
        2,
        (
            S("ignore|disregard|forget"),
            S("everything|all|anything"),
            S(
                "above|before|previously|prior|that came before|you were told|you have been told|"
                "i said before|in your prompt|in your instructions"
            ),
        ),
        (1, 2),
        key=2,
    ),
    Rule(
        "instruction_override",
        2,
        (S("ignore|disregard"), S("above|foregoing|preceding")),
        (1,),
        next_not=frozenset(
            [
                "email",
                "message",
                "mail",
                "link",
                "comment",
                "note",
                "file",
                "attachment",
                "typo",
                "question",
                "paragraph",
                "section",
                "chart",
                "table",
                "figure",
            ]
        ),
    ),
    Rule(
        "instruction_override",
        2,
        (
            S("vergiss|oublie|oubliez|olvida|olvídate|dimentica|vergeet|esqueça|esquece"),
            S("alles|tout|todo|tutto|tudo"),
            S(
                "bisher|vorher|zuvor|oben|précède|avant|dit|anterior|antes|dicho|prima|precedente|"
                "detto|eerder|hiervoor|gezegd|dito"
            ),
        ),
        (1, 5),
    ),
    Rule("prompt_leak", 2, (LEAK_VERBS, YOUR, LEAK_NOUNS), (6, 3)),
    Rule("prompt_leak", 1, (LEAK_VERBS, YOUR, RULE_NOUNS), (6, 2)),
    Rule(
        "prompt_leak",
        2,
        (
            S("repeat|print|output|copy"),
            S("words|text|everything|lines|line"),
            S("above|before this"),
        ),
        (3, 0),
    ),
    Rule(
        "prompt_leak",
        2,
        (S("output|print|repeat|write"), S("starting with|beginning with"), S("you are")),
        (8, 0),
        trigger="starting beginning",
    ),
    Rule(
        "prompt_leak",
        1,
        (S("the|your"), S("system prompt|initial instructions|hidden instructions")),
        (0,),
    ),
    Rule(
        "prompt_leak",
        1,
        (S("beginning|start"), S("of"), S("this|the|our"), S("conversation|chat|prompt")),
        (0, 0, 0),
    ),
    Rule("role_play", 2, (ROLE_VERBS, NEGATIONS, LIMITS), (14, 4)),
    Rule(
        "role_play",
        2,
        (
            S(
                "do anything now|dan mode|you are dan|you are now dan|jailbreak mode|"
                "unrestricted mode|unfiltered mode|uncensored mode|evil mode|chaos mode|"
                "developer mode enabled|developer mode output|opposite mode"
            ),
        ),
        key=0,
    ),
    Rule(
        "role_play",
        2,
        (S("act as|act like|behave as|you are now|you are|you're|become"), PERSONAS),
        (2,),
    ),
    Rule(
        "role_play", 2, (S("ai|model|assistant|chatbot|bot|version|llm"), NEGATIONS, LIMITS), (3, 3)
    ),
    Rule("role_play", 2, (S("answer|respond|reply"), S("as both|like both"), PERSONAS), (0, 20)),
    Rule(
        "prompt_leak",
        2,
        (
            S("print|repeat|output|show|copy|tell me|what|write|reveal"),
            S("beginning|start"),
            S("of"),
            S("this|the|our"),
            S("conversation|chat|prompt"),
        ),
        (6, 0, 0, 0),
        trigger="beginning start",
    ),
    Rule(
        "role_play",
        2,
        (
            GRANNIES,
            S("used to|would"),
            S("tell|read|recite|sing|say|whisper"),
            S(
                "keys|key|passwords|password|napalm|recipe|serial|codes|code|instructions|"
                "activation"
            ),
        ),
        (30, 10, 15),
    ),
    Rule(
        "role_play",
        2,
        (
            S("without"),
            S("moral|ethical|any moral|any ethical"),
            S("restrictions|considerations|constraints|guidelines|limits|limitations|boundaries"),
        ),
        (1, 0),
    ),
    Rule(
        "role_play",
        2,
        (
            S("hypothetically|hypothetical"),
            S("no|without"),
            S("rules|restrictions|guidelines|ethics|filters|limits"),
        ),
        (12, 2),
    ),
    Rule(
        "encoded_payload",
        2,
        (
            S("decode|decipher|translate|convert"),
            S("base64|rot13|rot-13|hex|cipher|encoded"),
            S("follow|execute|obey|do|comply|run|perform|carry out|act on"),
        ),
        (6, 12),
        key=1,
    ),
    Rule("role_play", 1, (S("you are now|from now on"),), key=0, trigger="now"),
    Rule("role_play", 1, (S("stay|remain|keep"), S("in character")), (0,)),
    Rule(
        "role_play",
        1,
        (
            S(
                "jailbreak|jailbroken|jailbreaking|unfiltered|uncensored|unrestricted|"
                "developer mode|god mode"
            ),
        ),
        key=0,
    ),
    Rule("role_play", 1, (S("never|don't|do not"), S("refuse")), (0,)),
    Rule("role_play", 1, (S("answer|respond|reply"), S("as both|like both")), (0,)),
    Rule("encoded_payload", 1, (S("base64|rot13|rot-13"),), key=0),
    *EXTRACTION_RULES,
)

_BY_TRIGGER: dict[str, list[Rule]] = {}
for _rule in RULES:
    for _word in _rule.triggers():
        _BY_TRIGGER.setdefault(_word, []).append(_rule)
#: Words whose presence makes the rules worth running (each rule's key slot).
TRIGGER_WORDS = frozenset().union(*(r.triggers() for r in RULES))
