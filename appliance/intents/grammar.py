"""Local intents: the few things a voice appliance is asked most (stop, volume, time, date, kitchen timers,
"say that again"), recognized on the transcript by a small English grammar and answered without the LLM.

The grammar matches the whole utterance (after ``normalize``), never a part of it: "stop" is an intent, "how do
I stop smoking" is a question for the LLM. The one exception is a last clause after at most three words set
off by a comma or a stop, the wake phrase however Whisper heard it over a reply ("8th of this, stop."), and a
plain stop after those words with no comma ("A for this stop.").

A volume number from 0 to 10 is a level out of 10 ("volume 7" is 70 %); from 11 it is a percentage, as is any
number said with "percent". "mute" is a ``volume_set`` to 0 and "unmute" its own kind, which goes back to the
level before the mute.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from appliance.intents.duration import PATTERN as DURATION
from appliance.intents.duration import parse_duration
from appliance.intents.normalize import MAX_ADDRESS_WORDS, normalize, request_after_address

MAX_CHARS = 160
"""A transcript longer than this is never a local intent (and costs no matching)."""


class IntentKind(enum.StrEnum):
    STOP = "stop"
    VOLUME_UP = "volume_up"
    VOLUME_DOWN = "volume_down"
    VOLUME_SET = "volume_set"
    UNMUTE = "unmute"
    TIME = "time"
    DATE = "date"
    TIMER_SET = "timer_set"
    TIMER_LEFT = "timer_left"
    TIMER_CANCEL = "timer_cancel"
    REPEAT = "repeat"
    CALL = "call"
    HANG_UP = "hang_up"


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    seconds: float | None = None
    """``timer_set``: the duration; ``timer_cancel``: the duration that names the timer, if one was said."""
    level: int | None = None
    """``volume_set``: the level asked for, 0..100."""
    label: str | None = None
    """The timer's name ("pasta" in "set a pasta timer for 10 minutes"), if one was said; ``call``: the room."""


# Words that never name a timer, so "what is a timer for 5 minutes" is not a timer called "what is".
_NOT_LABELS = (
    "a an the my your our this that these those one another new all both every each any some of for to in on at "
    "by with from and or but is are was be been am do does did can could would will should what whats which who "
    "how when where why i you we it me us him her them he she they set start make create add begin run put give "
    "get need want like let cancel stop delete remove clear end kill turn switch shut off abort dismiss reset "
    "forget drop disable check show list long much many more left time timer timers called named labeled "
    "labelled lasting minute minutes hour hours second seconds day days half quarter not no please"
).split()
_NOT_ROOMS = frozenset("me you it him her them us back later a an my your his their our this that".split())
"""First words after "call" that name no room ("call me a taxi", "call it a day")."""
_WORD = rf"(?!(?:{'|'.join(_NOT_LABELS)})\b)[a-z]+"
_LABEL = rf"{_WORD}(?: {_WORD}){{0,2}}"
_VOL = r"(?:the )?(?:volume|sound)"
_BIT = r"(?: (?:a )?(?:bit|little|little bit|notch|tad|touch)| some)?(?: more)?"
_LOUDER = r"(?:(?:a )?(?:bit |little |little bit )?louder)"
_QUIETER = r"(?:(?:a )?(?:bit |little |little bit )?(?:quieter|softer|lower))"
_LEVEL = r"(?P<n>\d+(?:\.\d+)?|max|maximum|full|half)(?P<percent> percent)?(?P<of10> out of 10)?"
_STOP_TALKING = r"stop(?: it| that| talking| speaking)?"
_STOP = (
    rf"(?:{_STOP_TALKING}|cancel(?: it| that)?|never ?mind(?: that)?|forget (?:it|about it)"
    r"|(?:be|keep|stay) (?:quiet|silent)|quiet|shut up|shush|hush|sh+|silence|that is enough|enough(?: already)?"
    r"|that will do|(?:stop|turn off|silence) (?:the )?(?:alarm|ringing|beeping))"
)
_SET_VERB = (
    r"(?:(?:set|start|make|create|add|begin|run|put on|set up|start up|give me|get me|i need|i want"
    r"|i would like|let us do|let us set)(?: me| us| up)? )?"
)
_A = r"(?:(?:a new|another|a second|a third|a|an|the|my|1|new) )?"
_NAMED = r"(?:called|named|labeled|labelled)"
_CANCEL_VERB = (
    r"(?:cancel|stop|delete|remove|clear|end|kill|turn off|switch off|shut off|abort|dismiss|reset|get rid of"
    r"|forget about|forget|disable|drop)"
)
_WHICH = r"(?:(?:all of the|all of my|all the|all my|both the|both my|the|my|that|this|all|both|every|each) )?"
_TIMER_REF = rf"(?:the|my|that|this) (?:(?P<label>{_LABEL}) )?timer"
_ON_TIMER = rf"(?: (?:on|for|in) {_TIMER_REF})?"

_RULES: dict[IntentKind, tuple[str, ...]] = {
    IntentKind.STOP: (rf"(?:(?:no|oh|ok|okay|just|please) )*{_STOP}(?: {_STOP})*(?: (?:please|now|already))*",),
    IntentKind.VOLUME_UP: (
        rf"(?:volume up|(?:turn|crank|bump|pump|go) (?:it|that|yourself|{_VOL}) up|turn up {_VOL}|turn up"
        rf"|(?:increase|raise|boost|up) {_VOL}|(?:increase|raise) volume|more volume){_BIT}",
        rf"(?:(?:make it|speak|talk|be|get|go|sound) )?{_LOUDER}(?: {_LOUDER})*(?: please)?",
        r"speak up|(?:it is |you are |that is )?too quiet|i can not hear you",
    ),
    IntentKind.VOLUME_DOWN: (
        rf"(?:volume down|(?:turn|bring|go) (?:it|that|yourself|{_VOL}) down|turn down {_VOL}|turn down"
        rf"|(?:decrease|lower|reduce|drop) {_VOL}|(?:decrease|lower|reduce) volume|less volume){_BIT}",
        rf"(?:(?:make it|speak|talk|be|get|go|sound) )?{_QUIETER}(?: {_QUIETER})*",
        r"(?:it is |you are |that is )?too loud|not so loud",
    ),
    IntentKind.VOLUME_SET: (
        rf"(?:set|change|turn|put|make|adjust|bring) (?:it|{_VOL})(?: level)?(?: up| down)? (?:to|at|on)"
        rf"(?: level)?(?: the)? {_LEVEL}",
        rf"(?:set )?{_VOL}(?: level)?(?: to| at| on)?(?: the)? {_LEVEL}",
        r"(?P<n>max|maximum|full|half) volume",
        rf"(?P<mute>mute(?: it| yourself| {_VOL}| (?:the )?(?:audio|speaker))?|(?:turn|switch) off {_VOL}"
        rf"|(?:turn|switch) {_VOL} off|volume off|sound off)",
    ),
    IntentKind.UNMUTE: (
        rf"unmute(?: it| yourself| {_VOL}| (?:the )?(?:audio|speaker))?|(?:turn|switch) on {_VOL}"
        rf"|(?:turn|switch) {_VOL} (?:back )?on|volume on|sound on",
    ),
    IntentKind.TIME: (
        r"(?:what|which) time is it(?: currently| at the moment)?",
        r"what is the (?:current )?time(?: currently)?",
        r"(?:tell me|give me|do you know|you know|do you have|have you got|got) the (?:current )?time",
        r"(?:tell me|do you know|you know|any idea|do you have any idea) what time it is",
        r"the (?:current )?time|current time",
    ),
    IntentKind.DATE: (
        r"what is (?:the (?:current )?date|todays date|the date today|today|the day(?: of the week)?(?: today)?)",
        r"what (?:date|day|day of the week) is (?:it|today)(?: today)?",
        r"which day is (?:it|today)(?: today)?",
        r"(?:tell me|give me|do you know|you know) (?:the (?:current )?|todays )date(?: today)?",
        r"(?:tell me|do you know|you know|any idea) what (?:date|day|day of the week) it is(?: today)?",
        r"todays date|the date(?: today)?",
    ),
    IntentKind.TIMER_SET: (
        rf"{_SET_VERB}{_A}(?:(?P<label>{_LABEL}) )?timer (?:{_NAMED} (?P<label2>{_LABEL}) )?"
        rf"(?:(?:for|of|on|at|to|lasting) )?(?P<duration>{DURATION})"
        rf"(?: (?:{_NAMED}|for|on) (?:the |my )?(?P<label3>{_LABEL}))?",
        rf"{_SET_VERB}{_A}(?P<duration>{DURATION}) (?:long )?(?:(?P<label>{_LABEL}) )?timer"
        rf"(?: (?:{_NAMED}|for|on) (?:the |my )?(?P<label2>{_LABEL}))?",
    ),
    IntentKind.TIMER_LEFT: (
        r"how (?:much|long)(?: more)?(?: time)?(?: is| do i have| do we have| have i got| is there| does it have)?"
        rf" (?:left|remaining|remains|to go)(?: on it)?{_ON_TIMER}",
        rf"how much longer(?: is (?:it|left|there)| do i have(?: left)?| left| to go)?{_ON_TIMER}",
        rf"how long (?:until|till|before) {_TIMER_REF}"
        r"(?: (?:goes off|is done|rings|ends|finishes|is finished|is up|will ring|will go off))?",
        rf"(?:the )?time (?:left|remaining){_ON_TIMER}",
        rf"what is (?:left|remaining) on {_TIMER_REF}",
        rf"what is {_TIMER_REF} at",
        rf"how is {_TIMER_REF}(?: doing| going)?",
        rf"(?:check|show|list) (?:the |my |all |all my |all the )?(?:(?P<label>{_LABEL}) )?timers?",
        r"(?:(?:are there|do i have|do we have|is there|have i got) (?:any|a) timers?"
        r"(?: running| set| on| going)?|timer|timers|timer status|what timers (?:do i have|are (?:running|set|on)))",
    ),
    IntentKind.TIMER_CANCEL: (
        rf"{_CANCEL_VERB} {_WHICH}(?:(?P<duration>{DURATION}) )?(?:(?P<label>{_LABEL}) )?timers?"
        rf"(?: (?:for|called|named|on) (?:the |my )?(?P<label2>{_LABEL})| (?:for|of) (?P<duration2>{DURATION}))?",
        rf"(?:turn|switch|shut) {_WHICH}(?:(?P<label>{_LABEL}) )?timers? off",
    ),
    IntentKind.REPEAT: (
        r"repeat(?: (?:that|it|this|yourself|what you (?:just )?said|the last (?:thing|answer|sentence)))?(?: 1)?"
        r"(?: again| 1 more time| once more)?",
        r"say (?:that|it|this|what you (?:just )?said)(?: 1)? (?:again|1 more time|once more)",
        r"what did you (?:just )?say|what was that(?: again)?|come again|pardon(?: me)?|i beg your pardon"
        r"|(?:i )?did not (?:hear|catch|get) (?:that|you|it|what you said)|say again|again|1 more time|once more",
    ),
    IntentKind.CALL: (
        r"(?:(?:please|can you|could you|would you) )?(?:call|ring|phone|dial|connect (?:me )?to|join|start a call"
        r" (?:with|to)|make a call to|start the call with|open the call to) (?:the )?(?:(?P<label>[a-z]+(?: [a-z]+)?)|"
        r"(?:the )?room)(?: room| please| now)*",
        r"(?:start|make|begin|open) (?:a|the) call",
    ),
    IntentKind.HANG_UP: (
        r"(?:(?:please|ok|okay) )?(?:hang up|end (?:the|this) call|stop (?:the|this) call"
        r"|leave (?:the|this) (?:call|room)|close (?:the|this) call|disconnect|finish (?:the|this) call"
        r"|(?:the )?call is over|that is all for the call)"
        r"(?: please| now)*",
    ),
}
_COMPILED = tuple((kind, re.compile(rf"(?:{pattern})\Z")) for kind, patterns in _RULES.items() for pattern in patterns)
_RUN_IN_STOP = re.compile(rf"(?:{_STOP_TALKING}|be quiet|shut up|enough|never mind)(?: please| now)*")
"""The stop commands taken after an address Whisper ran into them with no clause mark (not "silence" or
"quiet" alone: "the sound of silence" is no command)."""
_NOT_AN_ADDRESS = frozenset(
    "not never no who what why how when where which whose is are was were do does did can could would should will"
    " if to".split()
)
"""Words that make the words after them part of a sentence ("do not stop", "who said stop", "is that enough"),
not a command after an address."""


def match(transcript: str) -> Intent | None:
    """The local intent ``transcript`` says, or None (the LLM answers it): the whole transcript's, else that of
    the request after a short address ("8th of this, stop."), else a stop run into its address ("A for this
    stop.")."""
    if len(transcript) > MAX_CHARS:
        return None
    plain = normalize(transcript)
    request = request_after_address(transcript)
    for text in (plain, normalize(request) if request else ""):
        if not text:
            continue
        for kind, pattern in _COMPILED:
            found = pattern.match(text)
            if found is not None:
                return _intent(kind, found)
    return Intent(IntentKind.STOP) if _stop_after_address(transcript, plain) else None


def _stop_after_address(transcript: str, plain: str) -> bool:
    """Whether ``transcript`` (``plain`` once normalized) is a stop command after a short address Whisper ran
    into it with no clause mark: "Hey Jarvis, stop." said over a reply, with the reply's echo under the wake
    phrase, was heard as "A for this stop." Only the stop commands are taken this way, and not in a question."""
    if transcript.rstrip().endswith("?"):
        return False
    words = plain.split()
    for cut in range(1, min(MAX_ADDRESS_WORDS, len(words) - 1) + 1):
        if words[cut - 1] in _NOT_AN_ADDRESS:
            return False
        if _RUN_IN_STOP.fullmatch(" ".join(words[cut:])):
            return True
    return False


def _intent(kind: IntentKind, found: re.Match[str]) -> Intent | None:
    groups = {name: value for name, value in found.groupdict().items() if value is not None}
    label = groups.get("label") or groups.get("label2") or groups.get("label3")
    said = groups.get("duration") or groups.get("duration2")
    seconds = parse_duration(said) if said is not None else None
    if kind is IntentKind.TIMER_SET and seconds is None:
        return None
    if kind is IntentKind.CALL:  # "call the room": the configured one; a name with spaces as LiveKit names go
        if label is not None and label.split()[0] in _NOT_ROOMS:
            return None  # "call me a taxi" asks for no call
        room = None if label in (None, "room", "call") else label.replace(" ", "-")
        return Intent(kind, label=room)
    if kind is IntentKind.VOLUME_SET:
        level = 0 if "mute" in groups else _level(groups["n"], "percent" in groups, "of10" in groups)
        return Intent(kind, level=level)
    return Intent(kind, seconds=seconds, label=label)


def _level(said: str, percent: bool, out_of_ten: bool) -> int:
    """0..100 from the number said: out of 10 up to 10 (unless "percent"), a percentage above."""
    if said in ("max", "maximum", "full"):
        return 100
    if said == "half":
        return 50
    value = float(said)
    if out_of_ten or (value <= 10 and not percent):
        value *= 10
    return round(min(value, 100.0))
