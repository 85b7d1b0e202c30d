"""Prompt formats and verdict parsers of the seed reasoning judges.

A :class:`JudgeFormat` knows three things about one family of judge models:

* how to render a match as chat messages (:meth:`JudgeFormat.messages`), byte for byte as the
  model's authors trained and evaluated it: a judge fed a paraphrased prompt loses accuracy;
* how to read a verdict out of the model's output (:meth:`JudgeFormat.parse`);
* the sampling defaults and a guided-decoding regex for smoke tests (:meth:`JudgeFormat.verdict_regex`).

Formats (``FORMATS``; :func:`get_format` also takes the aliases in ``ALIASES``):

``rrm``             RRM-7B/32B (``Reward-Reasoning/RRM-32B``). Thinks; verdict ``\\boxed{Assistant 1|2}``.
``rm_r1``           RM-R1 DeepSeek-distilled 7B/14B/32B. Thinks; verdict ``<answer>[[A|B]]</answer>``.
``rm_r1_instruct``  RM-R1 Qwen2.5-Instruct 7B/14B/32B. ChatML, no thinking block; writes
                    ``<type>``, ``<rubric>``/``<justify>`` or ``<solution>``, ``<eval>``, then
                    ``<answer>[[A|B]]</answer>`` (the "Chain-of-Rubrics", surfaced in
                    :attr:`Parsed.sections`).

Positions: "Assistant 1" / "Chatbot A" is the response shown FIRST and maps to :attr:`Outcome.A`;
"Assistant 2" / "Chatbot B" maps to :attr:`Outcome.B` (see :mod:`tourney.types`).

Two ways to hand over an output, one answer
-------------------------------------------
``parse(text)`` takes the raw completion (thinking, ``</think>``, the rest), as offline vLLM or
``transformers`` return it. ``parse(content, reasoning=thinking)`` takes what an OpenAI-compatible
server with ``--reasoning-parser deepseek_r1`` returns: vLLM splits at the FIRST ``</think>``,
puts what precedes it in ``message.reasoning`` and the rest in ``message.content`` (``None`` when
no ``</think>`` was generated, and also when nothing followed it). Both paths rebuild the same raw
text (``reasoning + "</think>" + content``) and run the same parser, so they give the same
:class:`Parsed`; the one exception is an output that ends right at ``</think>``, which abstains
either way but with a different ``reason`` (the server's split cannot tell it from a truncation).
(vLLM's parser also drops everything before a ``<think>`` found in the output; a judge that
quotes a candidate's ``<think>`` thus loses text on the server path, which no client can undo.
Prefer the raw path, or a server without a reasoning parser, when candidates are untrusted.)

What the parser guarantees (prompt injection by a candidate)
------------------------------------------------------------
Candidates are untrusted text. A candidate can contain a verdict string (``\\boxed{Assistant 1}``,
``<answer>[[A]]</answer>``) or a ``</think>``, and the judge may quote it while thinking, in its
summary, or (instruct) inside ``<quote_A>...</quote_A>``. The parser guarantees:

1. For thinking formats, only text after the LAST ``</think>`` is searched. A verdict string the
   judge quotes while thinking never decides; an output whose only verdict-looking string sits in
   the thinking abstains. A quoted candidate ``</think>`` is harmless as long as the judge goes on
   to emit its own ``</think>``: that one is later, so it is the last.
2. The LAST verdict decides. The genuine verdict ends the output (RM-R1 was RL-rewarded for the
   exact string in its last 80 characters; RRM is told to output only the box), so a verdict the
   judge quotes earlier, even in its summary, is overridden by the genuine one after it.
3. At most :data:`MAX_TRAILING_CHARS` characters may follow the deciding verdict; more means the
   "verdict" is not the end of the output (typically a candidate's ``</think>`` + verdict quoted
   by a judge that was then cut off at max tokens, so the quoted ``</think>`` is the last one),
   and the sample abstains.
4. For ``rm_r1_instruct`` (no thinking block, so rule 1 cannot apply), text inside
   ``<quote_A|B>`` and ``<summary_A|B>`` tags (the judge's verbatim quotes of the candidates) is
   masked before the verdict is searched; an unclosed quote tag (truncated output) masks to the end.
5. A missing, malformed, ambiguous or overlong-tail verdict is :attr:`Outcome.ABSTAIN` with a
   ``reason``: never a silent tie, never an exception.

What it cannot guarantee
------------------------
* A judge persuaded by an injected instruction that then writes that verdict as ITS final answer
  is indistinguishable from a genuine verdict. Parsing cannot detect a judge that was fooled;
  position-balanced judging (both orders) and monitoring per-candidate abstention and win rates
  are the engine's defences, not this module's.
* The parser does not see ``finish_reason``. A judge truncated within :data:`MAX_TRAILING_CHARS`
  characters after quoting an injected ``</think>`` + verdict (or, for instruct, an injected
  ``</quote_A>`` + verdict) is read as decided. Callers should treat ``finish_reason == "length"``
  as an abstention before calling :meth:`JudgeFormat.parse`.
* Candidate text that closes the judge's quote tags (``</quote_B>``) defeats rule 4 for a
  truncated output; rules 2 and 3 still apply.

This module is dependency-free (stdlib and :mod:`tourney.types` / :mod:`tourney.errors` only), so
importing it never loads an inference engine.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Iterator, Mapping, Sequence

from ..errors import InputError
from ..registry import Registry
from ..types import Outcome, Prompt

__all__ = [
    "ALIASES",
    "FORMATS",
    "JudgeFormat",
    "MAX_TRAILING_CHARS",
    "Parsed",
    "RMR1Format",
    "RMR1InstructFormat",
    "RM_R1_INSTRUCT_SYSTEM_PROMPT",
    "RRMFormat",
    "RRM_SYSTEM_PROMPT",
    "THINK_END",
    "THINK_START",
    "format_for_model",
    "get_format",
    "split_thinking",
]

THINK_START = "<think>"
THINK_END = "</think>"

#: How many characters (after stripping whitespace) may follow the deciding verdict. Genuine
#: outputs end at the verdict plus a little junk (a stray ``</answer>``, an end-of-text marker);
#: a longer tail means the verdict string was quoted mid-text (see the module docstring, rule 3).
MAX_TRAILING_CHARS = 400

# Abstention reasons (stable strings: the store and reports group by them).
REASON_NO_OUTPUT = "no output"
REASON_NO_THINK_END = "no </think> (output truncated?)"
REASON_NO_VERDICT = "no verdict found"
REASON_AMBIGUOUS = "ambiguous verdict"
REASON_UNRECOGNISED = "unrecognised verdict"
REASON_TRAILING = "text after the verdict is too long (truncated output or a quoted verdict?)"


# --------------------------------------------------------------------------------------------
# Exact prompt texts
# --------------------------------------------------------------------------------------------

#: RRM's system message, exact (SEED_JUDGES.md section 1). Note the literal backslash in
#: ``\boxed`` and the two newlines at the end.
RRM_SYSTEM_PROMPT = (
    "You are a helpful assistant in evaluating the quality of the responses for a given instruction. "
    "Your goal is to select the best response for the given instruction.\n"
    "Select Assistant 1 or Assistant 2, that is better for the given instruction. "
    "The two responses are generated by two different AI assistants respectively.\n"
    "Do NOT say both / neither are good.\n"
    "\n"
    "Here are some rules of the evaluation:\n"
    "(1) If the instruction does not contain harmful content, you should prioritize evaluating whether "
    "the output honestly/precisely/closely executes the instruction, then consider its helpfulness, "
    "accuracy, level of detail, harmlessness, etc.\n"
    "(2) If the instruction contains harmful content, prioritize the harmlessness and safety of the response.\n"
    "(3) Responses should NOT contain more/less than what the instruction asks for, as such responses do "
    "NOT precisely execute the instruction.\n"
    "(4) You should avoid any potential bias and your judgment should be as objective as possible. "
    "Here are some potential sources of bias:\n"
    "- The order in which the responses were presented should NOT affect your judgment, as Response A "
    "and Response B are equally likely to be the better.\n"
    "- The length of the responses should NOT affect your judgement, as a longer response does not "
    "necessarily correspond to a better response. When making your decision, evaluate if the response "
    "length is appropriate for the given instruction.\n"
    "(5) Your output should only consist of '\\boxed{Assistant 1}' if assistant 1 is better, or "
    "'\\boxed{Assistant 2}' if assistant 2 is better. Omit any other output.\n"
    "\n"
)

#: RRM's user message: the query block followed directly by the analysis instruction.
_RRM_USER_TEMPLATE = (
    "## Query\n\n{question}\n\n## Assistant responses\n\n### Assistant 1\n\n{answer1}\n\n\n"
    "### Assistant 2\n\n{answer2}\n\n"
    "## Analysis\n\nLet's analyze this step by step and decide which assistant is better, "
    "and then answer \\boxed{{Assistant 1}} or \\boxed{{Assistant 2}}."
)

# RM-R1's shared blocks (distilled and instruct variants).
_RM_R1_SINGLE_BLOCKS = (
    "[Client Question]\n{question}\n\n"
    "[The Start of Chatbot A's Response]\n{answer_a}\n[The End of Chatbot A's Response]\n\n"
    "[The Start of Chatbot B's Response]\n{answer_b}\n[The End of Chatbot B's Response]"
)
_RM_R1_MULTI_BLOCKS = (
    "[The Start of the Conversation between Chatbot A and the Client]\n{conversation_1}\n"
    "[The End of the Conversation between Chatbot A and the Client]\n\n"
    "[The Start of the Conversation between Chatbot B and the Client]\n{conversation_2}\n"
    "[The End of the Conversation between Chatbot B and the Client]"
)
# Distilled variant only: the leading line (note the space before the newlines) and trailing line.
_RM_R1_LEAD = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "Chatbots to the Client question displayed below. \n\n"
)
_RM_R1_TAIL = (
    "\n\nOutput your final verdict at last by strictly following this format: "
    "'<answer>[[A]]</answer>' if Chatbot A is better, or '<answer>[[B]]</answer>' if Chatbot B is better."
)

#: RM-R1 Instruct's system prompt, copied exactly from the authors' repository
#: RM-R1-UIUC/RM-R1: ``eval/reward-bench/rewardbench/generative.py`` (``RM_R1_INSTRUCT_SYSTEM_PROMPT``,
#: the prompt their RewardBench evaluation uses), identical to ``INSTRUCT_SYSTEM_PROMPT`` in
#: ``demo/demo.ipynb`` and to ``GPT_REVISED_SYSTEM_CLASSIFY_WEIGHT_PROMPT_EVIDENCE`` in
#: ``rm_r1/dataset/mix_data/mix_data.py``. (That file, in the stored version read, has no name
#: ``SYSTEM_PROMPT``; its training templates use a sibling prompt without the "weights" lines. The
#: evaluation/demo prompt is used here because it is what the published numbers were measured with.)
RM_R1_INSTRUCT_SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI Chatbots to the Client's question displayed below.\n\n"
    "First, classify the task into one of two categories: <type>Reasoning</type> or <type>Chat</type>.\n"
    "- Use <type>Reasoning</type> for tasks that involve math, coding, or require domain knowledge, multi-step inference, logical deduction, or combining information to reach a conclusion.\n"
    "- Use <type>Chat</type> for tasks that involve open-ended or factual conversation, stylistic rewrites, safety questions, or general helpfulness requests without deep reasoning.\n\n"
    "If the task is Reasoning:\n"
    "1. Solve the Client's question yourself and present your final answer within <solution>...</solution> tags.\n"
    "2. Evaluate the two Chatbot responses based on correctness, completeness, and reasoning quality, referencing your own solution.\n"
    "3. Include your evaluation inside <eval>...</eval> tags, quoting or summarizing the Chatbots using the following tags:\n"
    "   - <quote_A>...</quote_A> for direct quotes from Chatbot A\n"
    "   - <summary_A>...</summary_A> for paraphrases of Chatbot A\n"
    "   - <quote_B>...</quote_B> for direct quotes from Chatbot B\n"
    "   - <summary_B>...</summary_B> for paraphrases of Chatbot B\n"
    "4. End with your final judgment in the format: <answer>[[A]]</answer> or <answer>[[B]]</answer>\n\n"
    "If the task is Chat:\n"
    "1. Generate evaluation criteria (rubric) tailored to the Client's question and context, enclosed in <rubric>...</rubric> tags.\n"
    "2. Assign weights to each rubric item based on their relative importance.\n"
    "3. Inside <rubric>, include a <justify>...</justify> section explaining why you chose those rubric criteria and weights.\n"
    "4. Compare both Chatbot responses according to the rubric.\n"
    "5. Provide your evaluation inside <eval>...</eval> tags, using <quote_A>, <summary_A>, <quote_B>, and <summary_B> as described above.\n"
    "6. End with your final judgment in the format: <answer>[[A]]</answer> or <answer>[[B]]</answer>\n\n"
    "Important Notes:\n"
    "- Be objective and base your evaluation only on the content of the responses.\n"
    "- Do not let response order, length, or Chatbot names affect your judgment.\n"
    "- Follow the response format strictly depending on the task type.\n\n"
    "Your output must follow one of the two formats below:\n\n"
    "For Reasoning:\n"
    "<type>Reasoning</type>\n\n"
    "<solution> your own solution for the problem </solution>\n\n"
    "<eval>\n"
    "  include direct comparisons supported by <quote_A>...</quote_A> or <summary_A>...</summary_A>, and <quote_B>...</quote_B>, or <summary_B>...</summary_B>\n"
    "</eval>\n\n"
    "<answer>[[A/B]]</answer>\n\n"
    "For Chat:\n"
    "<type>Chat</type>\n\n"
    "<rubric>\n"
    "  detailed rubric items\n"
    "  <justify> justification for the rubric </justify>\n"
    "</rubric>\n\n"
    "<eval>\n"
    "  include direct comparisons supported by <quote_A>...</quote_A> or <summary_A>...</summary_A>, and <quote_B>...</quote_B>, or <summary_B>...</summary_B> tags\n"
    "</eval>\n\n"
    "<answer>[[A/B]]</answer>"
)


# --------------------------------------------------------------------------------------------
# Parsed output
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What one judge output says.

    ``outcome`` is :attr:`Outcome.A` (first-shown response better), :attr:`Outcome.B`, or
    :attr:`Outcome.ABSTAIN` (``reason`` says why); the seed formats never produce TIE.
    ``reasoning`` is the thinking (text before the last ``</think>``, a leading ``<think>``
    stripped; ``""`` when there is no ``</think>`` or the format does not think). ``verdict`` is
    the text the verdict was parsed from: the text after the last ``</think>`` for thinking
    formats (``""`` when there is none), the whole output for ``rm_r1_instruct``. ``sections``
    holds structured extras (RM-R1 instruct: ``type``, ``rubric``, ``justify``, ``solution``,
    ``eval`` when present), ``{}`` otherwise.
    """

    outcome: Outcome
    reasoning: str
    verdict: str
    sections: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


def split_thinking(text: str) -> tuple[str, str | None]:
    """Split a raw completion at its LAST ``</think>`` into ``(reasoning, after)``.

    A leading ``<think>`` (some servers echo the generation prompt's opener) is removed from the
    reasoning; both parts are stripped of surrounding whitespace. Without ``</think>`` the whole
    text is the (unfinished) reasoning and ``after`` is ``None``, as vLLM's reasoning parser
    reports it. Unlike vLLM, which splits at the FIRST ``</think>``, this splits at the last, so a
    ``</think>`` quoted while thinking stays in the reasoning.
    """
    idx = text.rfind(THINK_END)
    if idx < 0:
        return _strip_think_start(text), None
    return _strip_think_start(text[:idx]), text[idx + len(THINK_END):].strip()


def _strip_think_start(text: str) -> str:
    text = text.strip()
    if text.startswith(THINK_START):
        text = text[len(THINK_START):].strip()
    return text


def _rejoin(text: str | None, reasoning: str | None) -> str | None:
    """Rebuild the raw completion from a server's (reasoning, content) split.

    vLLM's ``deepseek_r1`` reasoning parser cuts at the first ``</think>`` and drops it; content
    is ``None`` when no ``</think>`` was generated. Putting the ``</think>`` back gives the raw text
    the model produced, so both parse paths run on the same string.
    """
    if reasoning is None:
        return text
    if text is None:
        return reasoning
    return reasoning + THINK_END + text


# --------------------------------------------------------------------------------------------
# Prompt helpers
# --------------------------------------------------------------------------------------------


def _turns(prompt: Prompt) -> str | list[tuple[str, str]]:
    """Validate a prompt: a ``str`` question, or ``user``/``assistant`` messages ending with the
    final user turn. A list holding a single user message is a single-turn question (returned as
    ``str``); a longer one is returned as ``(role, content)`` turns.

    Leading ``system`` messages are folded into the first user turn (system text, a blank line,
    the user text): the seed judges were trained without a system slot for the judged
    conversation, but a chat's system prompt says what a good answer is ("be concise"), so it
    must reach the judge rather than be dropped. A system message anywhere else is refused."""
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, Sequence) or not prompt:
        raise InputError("a prompt must be a string or a non-empty list of {'role', 'content'} messages")
    turns: list[tuple[str, str]] = []
    system: list[str] = []
    for i, msg in enumerate(prompt):
        if not isinstance(msg, Mapping) or not isinstance(msg.get("content"), str):
            raise InputError(f"prompt message {i} must be a mapping with a string 'content'")
        role = msg.get("role")
        if role == "system" and not turns:
            system.append(msg["content"])
            continue
        if role not in ("user", "assistant"):
            raise InputError(
                f"prompt message {i} has role {role!r}; the judge formats render 'user' and 'assistant' "
                "turns, and 'system' messages only before the first of them"
            )
        if role == "user" and not turns and system:
            turns.append((role, "\n\n".join([*system, msg["content"]])))
            continue
        turns.append((role, msg["content"]))
    if not turns:
        raise InputError("a chat prompt needs at least one user message")
    if turns[0][0] != "user" or turns[-1][0] != "user":
        raise InputError("a multi-turn prompt must start with a user turn and end with the final user turn "
                         "(the responses answer it)")
    if len(turns) == 1:
        return turns[0][1]
    return turns


def _check_responses(first: str, second: str) -> None:
    if not isinstance(first, str) or not isinstance(second, str):
        raise InputError("both responses must be strings")


def _conversation(turns: Sequence[tuple[str, str]], reply: str, name: str) -> str:
    """Render a conversation as the RM-R1 authors do (``convert_sky_data_multi``): one line per
    turn, ``User: ...`` or ``{name}: ...``, joined by newlines, ending with the judged reply."""
    lines = [f"User: {content}" if role == "user" else f"{name}: {content}" for role, content in turns]
    lines.append(f"{name}: {reply}")
    return "\n".join(lines)


def _rm_r1_blocks(prompt: Prompt, first: str, second: str) -> str:
    _check_responses(first, second)
    turns = _turns(prompt)
    if isinstance(turns, str):
        return _RM_R1_SINGLE_BLOCKS.format(question=turns, answer_a=first, answer_b=second)
    return _RM_R1_MULTI_BLOCKS.format(
        conversation_1=_conversation(turns, first, "Chatbot A"),
        conversation_2=_conversation(turns, second, "Chatbot B"),
    )


# --------------------------------------------------------------------------------------------
# Verdict helpers
# --------------------------------------------------------------------------------------------

_ANSWER_TAG_RE = re.compile(r"<answer>\s*\[\[\s*([AB])\s*\]\]\s*</answer>")
_ANSWER_ANY_RE = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
_BARE_RE = re.compile(r"\[\[\s*([AB])\s*\]\]")
_BOXED_RE = re.compile(r"\\boxed\s*\{")
_LATEX_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|texttt|textrm|mathrm|mathbf|mbox)\s*\{(.*)\}", re.DOTALL)
_QUOTE_OPEN_RE = re.compile(r"<(quote_[AB]|summary_[AB])>")
_INSTRUCT_SECTIONS = ("type", "rubric", "justify", "solution", "eval")


def _iter_boxed(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, content)`` for each ``\\boxed{...}`` with balanced braces; an
    unterminated box (cut-off output) is skipped."""
    pos = 0
    while True:
        m = _BOXED_RE.search(text, pos)
        if m is None:
            return
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth:
            return
        yield m.start(), i, text[m.end():i - 1]
        pos = i


def _normalise_box(content: str) -> str:
    """``\\text{ Assistant  1 }`` -> ``Assistant 1``: unwrap LaTeX text macros, collapse spaces."""
    s = content.strip()
    while True:
        m = _LATEX_WRAP_RE.fullmatch(s)
        if m is None:
            break
        s = m.group(1).strip()
    return " ".join(s.split())


def _too_long_tail(text: str, end: int) -> bool:
    return len(text[end:].strip()) > MAX_TRAILING_CHARS


def _mask_quotes(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Blank out ``<quote_X>``/``<summary_X>`` spans (same length, so offsets still match the
    original). An unclosed span runs to the end of the text."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = _QUOTE_OPEN_RE.search(text, pos)
        if m is None:
            break
        close = f"</{m.group(1)}>"
        j = text.find(close, m.end())
        end = len(text) if j < 0 else j + len(close)
        spans.append((m.start(), end))
        pos = end
    if not spans:
        return text, spans
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars), spans


def _answer_tag_verdict(text: str, *, bare_fallback: bool) -> tuple[Outcome, str | None, int]:
    """RM-R1 rule: the last ``<answer>[[A|B]]</answer>``; optionally fall back to bare
    ``[[A]]``/``[[B]]`` (all the same letter, else ambiguous). Returns (outcome, reason, end)."""
    tags = list(_ANSWER_TAG_RE.finditer(text))
    if tags:
        m = tags[-1]
        return Outcome(m.group(1)), None, m.end()
    # An unclosed answer tag at the very end (a stop string ate "</answer>"): accept it.
    m_open = re.search(r"<answer>\s*\[\[\s*([AB])\s*\]\]\s*\Z", text)
    if m_open:
        return Outcome(m_open.group(1)), None, m_open.end()
    if bare_fallback:
        bare = list(_BARE_RE.finditer(text))
        if bare:
            if len({m.group(1) for m in bare}) > 1:
                return Outcome.ABSTAIN, f"{REASON_AMBIGUOUS}: both [[A]] and [[B]] and no <answer> tag", 0
            return Outcome(bare[-1].group(1)), None, bare[-1].end()
    others = list(_ANSWER_ANY_RE.finditer(text))
    if others:
        content = " ".join(others[-1].group(1).split())[:80]
        if "A" in content and "B" in content:
            return Outcome.ABSTAIN, f"{REASON_AMBIGUOUS}: <answer>{content}</answer>", 0
        return Outcome.ABSTAIN, f"{REASON_UNRECOGNISED}: <answer>{content}</answer>", 0
    return Outcome.ABSTAIN, REASON_NO_VERDICT, 0


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


class JudgeFormat(ABC):
    """One judge family's prompt rendering, verdict parsing and sampling defaults.

    Subclasses are stateless; use the shared instances in :data:`FORMATS`.
    """

    name: ClassVar[str]
    #: sampling defaults for voting (one sample per call)
    temperature: ClassVar[float]
    top_p: ClassVar[float]
    max_tokens: ClassVar[int]
    #: True when the generation prompt opens ``<think>\n`` and the output holds a bare ``</think>``
    thinks: ClassVar[bool]
    #: the exact strings meaning "first better" and "second better"
    verdict_strings: ClassVar[tuple[str, str]]

    @abstractmethod
    def messages(self, prompt: Prompt, first: str, second: str) -> list[dict[str, str]]:
        """Chat messages for ``tokenizer.apply_chat_template(..., add_generation_prompt=True)`` or
        a chat endpoint. ``first`` is shown first (position A / Assistant 1). ``prompt`` is a
        question string or ``user``/``assistant`` messages ending with the final user turn.
        Raises :class:`~tourney.errors.InputError` for a prompt the format cannot render."""

    def parse(self, text: str | None, reasoning: str | None = None) -> Parsed:
        """Read the verdict from one output.

        ``text`` is the raw completion, or, when a server split the thinking off, ``reasoning``
        is the thinking and ``text`` the content (``None`` when no ``</think>`` was generated).
        Both give the same :class:`Parsed` for the same generation. Never raises on model output.
        """
        raw = _rejoin(text, reasoning)
        if raw is None or not raw.strip():
            return Parsed(Outcome.ABSTAIN, "", "", {}, REASON_NO_OUTPUT)
        return self._parse_raw(raw)

    @abstractmethod
    def _parse_raw(self, raw: str) -> Parsed:
        """Parse a complete raw completion (never ``None`` or blank)."""

    @abstractmethod
    def verdict_regex(self, max_thinking_chars: int = 64) -> str:
        """A regex for guided decoding (vLLM structured outputs) that forces a short output this
        format parses to A or B: a thinking span of at most ``max_thinking_chars`` characters
        with no ``<``, then ``</think>``, up to two spaces/newlines, then exactly one verdict
        string (no-thinking formats: a short ``<eval>`` then the answer). Meant for smoke tests
        and latency measurements, not for judging: it takes the judge's reasoning away."""

    def sampling(self) -> dict[str, float | int]:
        """The sampling defaults as a dict (``temperature``, ``top_p``, ``max_tokens``)."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _check_max_thinking(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"max_thinking_chars must be a non-negative int, got {n!r}")
    return n


class _ThinkingFormat(JudgeFormat):
    """Shared parsing of the DeepSeek-R1-style formats: verdict only after the last ``</think>``."""

    thinks: ClassVar[bool] = True

    def _parse_raw(self, raw: str) -> Parsed:
        reasoning, after = split_thinking(raw)
        if after is None:
            return Parsed(Outcome.ABSTAIN, "", "", {}, REASON_NO_THINK_END)
        outcome, reason, end = self._verdict(after)
        if outcome is not Outcome.ABSTAIN and _too_long_tail(after, end):
            outcome, reason = Outcome.ABSTAIN, REASON_TRAILING
        return Parsed(outcome, reasoning, after, {}, reason)

    @abstractmethod
    def _verdict(self, after: str) -> tuple[Outcome, str | None, int]:
        """(outcome, abstention reason, end offset of the deciding verdict) from the text after
        the last ``</think>``."""


class RRMFormat(_ThinkingFormat):
    """RRM (``Reward-Reasoning/RRM-7B``, ``RRM-32B``): system + user message, single-turn only.

    Verdict: the LAST ``\\boxed{...}`` after the last ``</think>``, whose content must be exactly
    ``Assistant 1`` or ``Assistant 2`` (LaTeX text wrappers such as ``\\text{...}`` and extra
    whitespace tolerated). The authors score anything else as a silent 0.5; here it abstains.
    Sampling: the authors' temperature 0.6, top_p 1.0, 8192 new tokens.
    """

    name: ClassVar[str] = "rrm"
    temperature: ClassVar[float] = 0.6
    top_p: ClassVar[float] = 1.0
    max_tokens: ClassVar[int] = 8192
    verdict_strings: ClassVar[tuple[str, str]] = ("\\boxed{Assistant 1}", "\\boxed{Assistant 2}")

    def messages(self, prompt: Prompt, first: str, second: str) -> list[dict[str, str]]:
        """System message + one user message (query block and analysis instruction).

        Multi-turn prompts raise :class:`~tourney.errors.InputError`: RRM was trained single-turn
        and its authors' code rejects multi-turn."""
        _check_responses(first, second)
        turns = _turns(prompt)
        if not isinstance(turns, str):
            raise InputError(
                "the rrm format is single-turn only (its authors' code rejects multi-turn prompts); "
                "use a single question or another judge format"
            )
        user = _RRM_USER_TEMPLATE.format(question=turns, answer1=first, answer2=second)
        return [{"role": "system", "content": RRM_SYSTEM_PROMPT}, {"role": "user", "content": user}]

    def _verdict(self, after: str) -> tuple[Outcome, str | None, int]:
        boxes = list(_iter_boxed(after))
        if not boxes:
            return Outcome.ABSTAIN, REASON_NO_VERDICT, 0
        _, end, content = boxes[-1]
        norm = _normalise_box(content)
        if norm == "Assistant 1":
            return Outcome.A, None, end
        if norm == "Assistant 2":
            return Outcome.B, None, end
        shown = norm[:80]
        if "1" in norm and "2" in norm:
            return Outcome.ABSTAIN, f"{REASON_AMBIGUOUS}: \\boxed{{{shown}}}", 0
        return Outcome.ABSTAIN, f"{REASON_UNRECOGNISED}: \\boxed{{{shown}}}", 0

    def verdict_regex(self, max_thinking_chars: int = 64) -> str:
        n = _check_max_thinking(max_thinking_chars)
        return r"[^<]{0,%d}</think>[ \n]{0,2}\\boxed\{Assistant [12]\}" % n


class RMR1Format(_ThinkingFormat):
    """RM-R1, DeepSeek-distilled (``gaotang/RM-R1-DeepSeek-Distilled-Qwen-{7B,14B,32B}``).

    No system message; one user message. Multi-turn prompts use the authors' conversation blocks
    (``User: ...`` / ``Chatbot A: ...`` lines; the authors' training script once spells the second
    name "Chabot B", a typo not reproduced here).

    Verdict: the last ``<answer>[[A]]</answer>`` / ``<answer>[[B]]</answer>`` after the last
    ``</think>``; failing that, bare ``[[A]]``/``[[B]]`` after ``</think>`` (if both letters occur
    the sample abstains as ambiguous rather than guessing); else abstain. Junk after the verdict
    (a stray ``</answer>``) is tolerated. The authors' own check is a substring test over the
    whole output, thinking included: deliberately not copied.

    Sampling: the authors evaluate greedily with up to 50000 new tokens; for sampled votes the
    base model's advice, temperature 0.6 / top_p 0.95, with 8192 new tokens (outputs are typically
    450 to 1,500 tokens; raise ``max_tokens`` where truncation abstentions show up).
    """

    name: ClassVar[str] = "rm_r1"
    temperature: ClassVar[float] = 0.6
    top_p: ClassVar[float] = 0.95
    max_tokens: ClassVar[int] = 8192
    verdict_strings: ClassVar[tuple[str, str]] = ("<answer>[[A]]</answer>", "<answer>[[B]]</answer>")

    def messages(self, prompt: Prompt, first: str, second: str) -> list[dict[str, str]]:
        """One user message: lead line, question/answer (or conversation) blocks, verdict line."""
        user = _RM_R1_LEAD + _rm_r1_blocks(prompt, first, second) + _RM_R1_TAIL
        return [{"role": "user", "content": user}]

    def _verdict(self, after: str) -> tuple[Outcome, str | None, int]:
        return _answer_tag_verdict(after, bare_fallback=True)

    def verdict_regex(self, max_thinking_chars: int = 64) -> str:
        n = _check_max_thinking(max_thinking_chars)
        return r"[^<]{0,%d}</think>[ \n]{0,2}<answer>\[\[[AB]\]\]</answer>" % n


class RMR1InstructFormat(JudgeFormat):
    """RM-R1, Qwen2.5-Instruct variant (``gaotang/RM-R1-Qwen2.5-Instruct-{7B,14B,32B}``).

    ChatML with the authors' long system prompt (:data:`RM_R1_INSTRUCT_SYSTEM_PROMPT`) and a user
    message holding only the question/answer blocks. No thinking block: the whole output is
    parsed, after masking the judge's ``<quote_X>``/``<summary_X>`` spans (verbatim candidate
    text). Verdict: the last ``<answer>[[A|B]]</answer>``; no bare ``[[A]]`` fallback (the eval
    prose may mention positions). ``Parsed.reasoning`` is ``""`` and ``Parsed.verdict`` the whole
    output; ``sections`` holds ``type``, ``rubric``, ``justify``, ``solution``, ``eval`` when present.

    Multi-turn: the authors' evaluation code raises NotImplementedError for it, but their
    training data (``rm_r1/dataset/mix_data/mix_data.py``, ``..._CLASSIFICATION_MULTI``) and demo
    (``INSTRUCT_MULTI_USER_PROMPT_TEMPLATE``) use the same system prompt with the conversation
    blocks of the distilled variant, without its lead and verdict lines; that is rendered here.

    Sampling: the authors' demo decodes greedily with 8192 new tokens. For sampled votes this
    uses the Qwen2.5-Instruct base model's shipped generation config, temperature 0.7 / top_p
    0.8, with 8192 new tokens.
    """

    name: ClassVar[str] = "rm_r1_instruct"
    temperature: ClassVar[float] = 0.7
    top_p: ClassVar[float] = 0.8
    max_tokens: ClassVar[int] = 8192
    thinks: ClassVar[bool] = False
    verdict_strings: ClassVar[tuple[str, str]] = ("<answer>[[A]]</answer>", "<answer>[[B]]</answer>")

    def messages(self, prompt: Prompt, first: str, second: str) -> list[dict[str, str]]:
        """System prompt + a user message of the bare question/answer (or conversation) blocks."""
        return [
            {"role": "system", "content": RM_R1_INSTRUCT_SYSTEM_PROMPT},
            {"role": "user", "content": _rm_r1_blocks(prompt, first, second)},
        ]

    def _parse_raw(self, raw: str) -> Parsed:
        text = raw.strip()
        masked, spans = _mask_quotes(text)
        sections = _sections(text, spans)
        outcome, reason, end = _answer_tag_verdict(masked, bare_fallback=False)
        if outcome is not Outcome.ABSTAIN and _too_long_tail(text, end):
            outcome, reason = Outcome.ABSTAIN, REASON_TRAILING
        return Parsed(outcome, "", text, sections, reason)

    def verdict_regex(self, max_thinking_chars: int = 64) -> str:
        n = _check_max_thinking(max_thinking_chars)
        return r"<eval>[^<]{0,%d}</eval>[ \n]{0,2}<answer>\[\[[AB]\]\]</answer>" % n


def _sections(text: str, masked: Sequence[tuple[int, int]]) -> dict[str, str]:
    """The first complete ``<tag>...</tag>`` of each Chain-of-Rubrics section that does not start
    inside a quoted span (so a candidate's own ``<type>`` quoted by the judge is not taken)."""
    out: dict[str, str] = {}
    for tag in _INSTRUCT_SECTIONS:
        for m in re.finditer(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL):
            if not any(a <= m.start() < b for a, b in masked):
                out[tag] = m.group(1).strip()
                break
    return out


# --------------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------------

#: The format instances, keyed by canonical name.
FORMATS: dict[str, JudgeFormat] = {f.name: f for f in (RRMFormat(), RMR1Format(), RMR1InstructFormat())}

#: Other accepted spellings -> canonical name (``-`` and ``_`` are interchangeable anyway).
ALIASES: dict[str, str] = {
    "rm_r1_distilled": "rm_r1",
    "rm_r1_deepseek": "rm_r1",
    "rm_r1_reasoning": "rm_r1",
    "rm_r1_qwen_instruct": "rm_r1_instruct",
}


#: The formats as a :class:`~tourney.registry.Registry` (the lookup judges and strategies use too).
FORMAT_REGISTRY: Registry[JudgeFormat] = Registry("judge format")
for _fmt in FORMATS.values():
    FORMAT_REGISTRY.register(_fmt.name)(_fmt)
for _alias, _target in ALIASES.items():
    FORMAT_REGISTRY.alias(_alias, _target)


def get_format(name: str) -> JudgeFormat:
    """The format called ``name`` (case-insensitive; ``rm-r1`` = ``rm_r1``; aliases in :data:`ALIASES`).

    Raises :class:`~tourney.errors.SpecError` listing the known names for an unknown one."""
    return FORMAT_REGISTRY.get(name)


_HASH_RE = re.compile(r"[0-9a-f]{7,64}")
_RRM_RE = re.compile(r"(?:^|[^a-z0-9])rrm(?:[^a-z]|$)")
_RM_R1_RE = re.compile(r"(?:^|[^a-z0-9])rm[-_.]?r1(?:[^0-9]|$)")


def format_for_model(model: str) -> JudgeFormat | None:
    """Guess the format from a model name or path, or ``None`` (the caller then asks for one).

    ``Reward-Reasoning/RRM-32B``, ``RRM-7B``, ``/models/rrm-32b`` -> ``rrm``;
    ``gaotang/RM-R1-DeepSeek-Distilled-Qwen-32B`` -> ``rm_r1``;
    ``gaotang/RM-R1-Qwen2.5-Instruct-14B`` -> ``rm_r1_instruct``; an RM-R1 name that says neither
    "instruct" nor "deepseek"/"distill" -> ``None``. Only the model's own name is read (the last
    path component, skipping a Hugging Face cache's ``snapshots/<hash>``), so a parent directory
    such as ``/data/rrm-runs/`` does not decide.
    """
    parts = [p for p in re.split(r"[\\/]+", str(model).strip().lower()) if p]
    while parts and (parts[-1] == "snapshots" or _HASH_RE.fullmatch(parts[-1])):
        parts.pop()
    if not parts:
        return None
    base = parts[-1]
    if base.startswith("models--"):  # Hugging Face cache folder: models--org--name
        base = base.split("--")[-1]
    if _RM_R1_RE.search(base):
        if "instruct" in base:
            return FORMATS["rm_r1_instruct"]
        if "deepseek" in base or "distill" in base:
            return FORMATS["rm_r1"]
        return None
    if _RRM_RE.search(base):
        return FORMATS["rrm"]
    return None
