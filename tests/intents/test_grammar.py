"""The grammar of local intents: what Whisper writes for each (case, punctuation, fillers, numbers as words or
digits) is recognized, and questions that only contain the same words go to the LLM."""

from __future__ import annotations

import time

import pytest

from appliance.intents.duration import parse_duration
from appliance.intents.grammar import Intent, IntentKind, match
from appliance.intents.normalize import normalize, request_after_address

K = IntentKind

POSITIVE = [
    # stop
    ("Stop.", K.STOP),
    ("Stop!", K.STOP),
    ("stop, please", K.STOP),
    ("Cancel.", K.STOP),
    ("Never mind.", K.STOP),
    ("Nevermind", K.STOP),
    ("Be quiet.", K.STOP),
    ("Quiet!", K.STOP),
    ("Shut up.", K.STOP),
    ("Silence.", K.STOP),
    ("That's enough.", K.STOP),
    # the wake phrase said over a reply, before the request, as whisper writes it
    ("Hey Jarvis, stop.", K.STOP),
    ("Hey, Jarvis. Stop!", K.STOP),
    ("Alexa, be quiet.", K.STOP),
    ("Okay Nabu, what time is it?", K.TIME),
    ("Hey Jervis, stop.", K.STOP),  # the name as whisper may hear it over the reply
    ("Hey, Travis. Be quiet!", K.STOP),
    ("That\u2019s enough.", K.STOP),
    ("Stop talking.", K.STOP),
    ("Okay, stop.", K.STOP),
    ("Um, stop.", K.STOP),
    ("No, no, stop.", K.STOP),
    ("Stop. Stop.", K.STOP),
    ("Stop, thank you.", K.STOP),
    ("Would you stop talking, please?", K.STOP),
    ("Stop the alarm.", K.STOP),
    # volume
    ("Volume up.", K.VOLUME_UP),
    ("Turn it up.", K.VOLUME_UP),
    ("Louder.", K.VOLUME_UP),
    ("Louder, please.", K.VOLUME_UP),
    ("A bit louder.", K.VOLUME_UP),
    ("Turn the volume up.", K.VOLUME_UP),
    ("Turn the volume up a little.", K.VOLUME_UP),
    ("Increase the volume.", K.VOLUME_UP),
    ("Speak up.", K.VOLUME_UP),
    ("Volume down.", K.VOLUME_DOWN),
    ("Quieter.", K.VOLUME_DOWN),
    ("Softer.", K.VOLUME_DOWN),
    ("Turn it down.", K.VOLUME_DOWN),
    ("Could you turn it down a bit, please?", K.VOLUME_DOWN),
    ("Lower the volume.", K.VOLUME_DOWN),
    ("It's too loud.", K.VOLUME_DOWN),
    ("Unmute.", K.UNMUTE),
    ("Turn the sound back on.", K.UNMUTE),
    # time and date
    ("What time is it?", K.TIME),
    (" What time is it?", K.TIME),
    ("what time is it", K.TIME),
    ("What's the time?", K.TIME),
    ("Whats the time", K.TIME),
    ("Tell me the time.", K.TIME),
    ("What is the time now?", K.TIME),
    ("What time is it right now?", K.TIME),
    ("Do you know what time it is?", K.TIME),
    ("Hey, can you tell me what time it is?", K.TIME),
    ("What's the date?", K.DATE),
    ("What is today's date?", K.DATE),
    ("What\u2019s today\u2019s date?", K.DATE),
    ("What day is it?", K.DATE),
    ("What day is it today?", K.DATE),
    ("What's today?", K.DATE),
    ("What day of the week is it?", K.DATE),
    # timers
    ("How much time is left?", K.TIMER_LEFT),
    ("How long is left on the timer?", K.TIMER_LEFT),
    ("How much longer?", K.TIMER_LEFT),
    ("Time left on the timer.", K.TIMER_LEFT),
    ("How much time is left on my timer?", K.TIMER_LEFT),
    ("How much time do I have left?", K.TIMER_LEFT),
    ("Is there a timer running?", K.TIMER_LEFT),
    ("What's left on the timer?", K.TIMER_LEFT),
    ("Cancel the timer.", K.TIMER_CANCEL),
    ("Stop the timer.", K.TIMER_CANCEL),
    ("Delete my timer.", K.TIMER_CANCEL),
    ("Turn off the timer.", K.TIMER_CANCEL),
    ("Turn the timer off.", K.TIMER_CANCEL),
    ("Cancel all timers.", K.TIMER_CANCEL),
    ("Remove all my timers.", K.TIMER_CANCEL),
    # repeat
    ("Repeat that.", K.REPEAT),
    ("Say that again.", K.REPEAT),
    ("What did you say?", K.REPEAT),
    ("Can you repeat that?", K.REPEAT),
    ("Come again?", K.REPEAT),
    ("Pardon?", K.REPEAT),
    ("Could you say that one again?", K.REPEAT),
    ("I didn't catch that.", K.REPEAT),
    # calls through a room (relay mode)
    ("Call the kitchen.", K.CALL),
    ("Can you call the garage?", K.CALL),
    ("Start a call.", K.CALL),
    ("Join the room.", K.CALL),
    ("Hang up.", K.HANG_UP),
    ("Okay, hang up please.", K.HANG_UP),
    ("End the call.", K.HANG_UP),
    ("Leave the room.", K.HANG_UP),
]

NEGATIVE = [
    "Call me Ishmael.",
    "Call me a taxi.",
    "What do you call a baby kangaroo?",
    "Who should I call about my taxes?",
    "Call it a day.",
    "How do I stop smoking?",
    "What time does the sun set?",
    "Who said stop?",
    "Who is Jarvis?",
    "Hey, what's the time in Tokyo?",
    "Jarvis",
    "How long is a marathon?",
    "Tell me about time zones.",
    "What is the date of Christmas?",
    "What is the date of Easter this year?",
    "What day is Christmas?",
    "What time is it in Tokyo?",
    "Tell me the time in London.",
    "What's the date tomorrow?",
    "Do you know what time the bank opens?",
    "What time is the game on?",
    "What is today's weather?",
    "What day of the week was July 4th 1776?",
    "What is time?",
    "Time flies like an arrow.",
    "Set a timer.",
    "Set a timer please.",
    "Can you set a timer?",
    "Set a timer for five minutes and tell me a joke.",
    "What is a timer?",
    "What is a timer for 5 minutes?",
    "What's the longest timer you can set?",
    "The timer is broken.",
    "Set an alarm for 7 am.",
    "How much time is left until Christmas?",
    "How much time is left in the game?",
    "How long is left of the movie?",
    "How much longer is the Amazon than the Nile?",
    "How many minutes are in an hour?",
    "How long should I boil an egg?",
    "What is a five minute mile?",
    "Five minutes.",
    "A minute.",
    "Stop the music.",
    "Stop making sense.",
    "Why did the Romans stop building roads?",
    "Cancel my subscription.",
    "Cancel my dentist appointment.",
    "Be quiet and listen to this story about a dog.",
    "Quiet places to visit in Paris.",
    "Silence of the lambs.",
    "That's enough salt?",
    "Repeat after me.",
    "Say hello.",
    "What did you say about Paris?",
    "What is the volume of a sphere?",
    "How loud is a jet engine?",
    "Is it too loud to play drums at night?",
    "Turn up the heat.",
    "Louder than words.",
    "Mute swans live in Europe.",
    "Set the table for five.",
    "Start the car.",
    "Thank you.",
    "Thanks.",
    "Okay, thanks.",
    "please",
    "Hmm.",
    "",
    "   ",
    "...",
]


@pytest.mark.parametrize(("transcript", "kind"), POSITIVE)
def test_what_whisper_writes_for_each_intent_is_recognized(transcript: str, kind: IntentKind) -> None:
    intent = match(transcript)
    assert intent is not None and intent.kind is kind, transcript


@pytest.mark.parametrize(
    ("transcript", "room"),
    [("Call the kitchen.", "kitchen"), ("Call the room.", None), ("Join the living room.", "living-room")],
)
def test_a_call_names_its_room_or_none_for_the_configured_one(transcript: str, room: str | None) -> None:
    assert match(transcript) == Intent(K.CALL, label=room)


@pytest.mark.parametrize("transcript", NEGATIVE)
def test_questions_that_only_contain_the_words_go_to_the_llm(transcript: str) -> None:
    assert match(transcript) is None


@pytest.mark.parametrize(
    ("transcript", "seconds", "label"),
    [
        ("Set a timer for five minutes.", 300, None),
        ("Set a timer for 5 minutes.", 300, None),
        ("set a timer for 5 min", 300, None),
        ("Set a timer for 5mins", 300, None),
        ("a timer for 5 min", 300, None),
        ("timer 5 minutes", 300, None),
        ("Timer for 90 seconds.", 90, None),
        ("set a five minute timer", 300, None),
        ("Set a five-minute timer.", 300, None),
        ("Set a 10 minute timer.", 600, None),
        ("10 minute timer.", 600, None),
        ("Set a thirty second timer.", 30, None),
        ("start a timer for two and a half minutes", 150, None),
        ("Set a timer for 2\u00bd minutes.", 150, None),
        ("Set a timer for 2.5 minutes.", 150, None),
        ("Set a timer for one and a half minutes.", 90, None),
        ("Set a timer for a minute and a half.", 90, None),
        ("Set a timer for 1 hour and 30 minutes.", 5400, None),
        ("Set a timer for one hour thirty minutes.", 5400, None),
        ("Set a timer for an hour and a half.", 5400, None),
        ("Set a timer for half an hour.", 1800, None),
        ("Set a timer for a quarter of an hour.", 900, None),
        ("Set a timer for a minute.", 60, None),
        ("Set a timer for a second.", 1, None),
        ("Set a timer for one minute and one second.", 61, None),
        ("Set a timer for 1 minute, 30 seconds.", 90, None),
        ("Set a timer for 10 sec.", 10, None),
        ("Set a timer for 2 hrs.", 7200, None),
        ("Set a timer for twenty-five minutes.", 1500, None),
        ("Hey, um, can you set a timer for 3 minutes, please?", 180, None),
        ("I need a timer for 20 minutes.", 1200, None),
        ("Set a timer for 5 minutes for me.", 300, None),
        ("Set another timer for 5 minutes.", 300, None),
        ("Set a second timer for 5 minutes.", 300, None),
        ("Set a timer for 48 hours.", 172800, None),
        ("Start a pasta timer for 8 minutes.", 480, "pasta"),
        ("Set a new pasta timer for 8 minutes.", 480, "pasta"),
        ("Set a timer called eggs for 5 minutes.", 300, "eggs"),
        ("Set a timer for 10 seconds called tea.", 10, "tea"),
        ("Set a timer for 10 minutes for the pasta.", 600, "pasta"),
        ("Start a 5-minute timer for the eggs.", 300, "eggs"),
        ("Set a 5 minute pizza timer.", 300, "pizza"),
        ("Set a boiled egg timer for 7 minutes.", 420, "boiled egg"),
    ],
)
def test_a_timer_is_set_with_its_duration_and_label(transcript: str, seconds: float, label: str | None) -> None:
    assert match(transcript) == Intent(K.TIMER_SET, seconds=seconds, label=label)


@pytest.mark.parametrize(
    ("transcript", "label", "seconds"),
    [
        ("Cancel the pasta timer.", "pasta", None),
        ("Cancel my pasta timer.", "pasta", None),
        ("Cancel the timer for pasta.", "pasta", None),
        ("Cancel the 5 minute timer.", None, 300),
        ("Cancel the timer.", None, None),
    ],
)
def test_a_timer_is_cancelled_by_its_label_or_duration(
    transcript: str, label: str | None, seconds: float | None
) -> None:
    assert match(transcript) == Intent(K.TIMER_CANCEL, seconds=seconds, label=label)


def test_time_left_can_name_the_timer() -> None:
    assert match("How much time is left on the pasta timer?") == Intent(K.TIMER_LEFT, label="pasta")
    assert match("How long until the pasta timer goes off?") == Intent(K.TIMER_LEFT, label="pasta")
    assert match("How much time is left?") == Intent(K.TIMER_LEFT)


@pytest.mark.parametrize(
    ("transcript", "level"),
    [
        ("Set volume to 50.", 50),
        ("Set the volume to fifty percent.", 50),
        ("Set the volume to 50%.", 50),
        ("Volume 7.", 70),
        ("Volume seven.", 70),
        ("Volume 10.", 100),
        ("Volume 11.", 11),
        ("Set the volume to 5%.", 5),
        ("Set the volume to seven out of ten.", 70),
        ("Turn the volume up to 80.", 80),
        ("Set volume to 150.", 100),
        ("Volume zero.", 0),
        ("Volume to the max.", 100),
        ("Max volume.", 100),
        ("Mute.", 0),
        ("Mute the sound.", 0),
    ],
)
def test_a_volume_number_up_to_10_is_out_of_10_and_above_is_percent(transcript: str, level: int) -> None:
    assert match(transcript) == Intent(K.VOLUME_SET, level=level)


def test_a_timer_with_no_duration_is_left_to_the_llm_to_ask_about() -> None:
    assert match("Set a timer.") is None
    assert match("Set a pasta timer.") is None
    assert match("Set a timer for the pasta.") is None


@pytest.mark.parametrize(
    ("said", "seconds"),
    [
        ("5 minutes", 300),
        ("5 min", 300),
        ("5 mins", 300),
        ("10 sec", 10),
        ("2 hrs", 7200),
        ("90 seconds", 90),
        ("a minute", 60),
        ("an hour", 3600),
        ("half an hour", 1800),
        ("half a minute", 30),
        ("a half hour", 1800),
        ("an hour and a half", 5400),
        ("1 and a half minutes", 90),
        ("1 hour 30 minutes", 5400),
        ("1 hour and 30 minutes", 5400),
        ("1 hour, 30 minutes and 10 seconds", 5410),
        ("2.5 minutes", 150),
        ("3 days", 259200),
    ],
)
def test_durations_as_people_say_them(said: str, seconds: float) -> None:
    assert parse_duration(said) == seconds


@pytest.mark.parametrize(
    "said", ["", "minutes", "as", "5", "and 5 minutes", "5 minutes pasta", "5 minutes and", "5 ms"]
)
def test_what_is_not_a_whole_duration_is_none(said: str) -> None:
    assert parse_duration(said) is None


def test_the_transcript_is_made_plain() -> None:
    assert normalize("Hey, um, can you set a five-minute timer, please?") == "set a 5 minute timer"
    assert normalize("What\u2019s today\u2019s date?") == "what is todays date"
    assert normalize("Set the volume to 50%.") == "set the volume to 50 percent"
    assert normalize("Set volume to a hundred.") == "set volume to 100"
    assert normalize("Set a thirty second timer.") == "set a 30 second timer"


def test_matching_takes_well_under_a_millisecond() -> None:
    transcripts = [t for t, _ in POSITIVE] + NEGATIVE
    for t in transcripts:  # the first calls warm up what is cached
        match(t)
    start = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for t in transcripts:
            match(t)
    per_call = (time.perf_counter() - start) / (rounds * len(transcripts))
    assert per_call < 0.5e-3, f"{per_call * 1e6:.0f} us per call"


def test_a_long_transcript_is_never_an_intent() -> None:
    assert match("stop " * 40) is None


@pytest.mark.parametrize(
    "heard, kind",
    [
        ("Repeat that. Repeat that. Repeat that. Repeat that. Repeat that", IntentKind.REPEAT),
        ("Say that again. Say that again. Say that again. Say that", IntentKind.REPEAT),
        ("Stop. Stop. Stop.", IntentKind.STOP),
    ],
)
def test_whispers_decoding_loop_on_a_short_clip_is_read_as_the_phrase_once(heard: str, kind: IntentKind) -> None:
    intent = match(heard)
    assert intent is not None and intent.kind is kind


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("8th of this, stop.", "stop."),  # Whisper's hearing of "Hey Jarvis, stop." over a reply, on the rig
        ("Hey Jervis. Stop it!", "Stop it!"),
        ("Okay, turn it down.", "turn it down."),
        ("stop", None),
        ("Stop talking about the weather", None),
        ("The capital of France, please, is what I asked about", None),
        ("I really do not like this story, stop.", None),  # more than an address before it
    ],
)
def test_the_request_after_a_short_address(text: str, command: str | None) -> None:
    assert request_after_address(text) == command


def test_a_command_after_a_short_address_is_matched() -> None:
    assert match("8th of this, stop.") == Intent(IntentKind.STOP)
    assert match("I really do not like this story, stop.") is None


@pytest.mark.parametrize(
    "transcript",
    [
        "A for this stop.",  # Whisper's hearing of "Hey Jarvis, stop." over a reply, on the rig
        "Hey Jervis stop it.",
        "Jarvis, be quiet.",
        "Harvest stop talking",
        "8th of this enough.",
    ],
)
def test_a_stop_run_into_its_address_is_a_stop(transcript: str) -> None:
    assert match(transcript) == Intent(IntentKind.STOP)


@pytest.mark.parametrize(
    "transcript",
    [
        "Don't stop.",
        "Please do not stop.",
        "Never stop.",
        "Who said stop",
        "Is that enough",
        "Did it stop?",
        "I want you to keep going and not stop",
        "We missed the last bus stop",  # more words than an address before the stop
        "The sound of silence.",
        "Stop the music.",
    ],
)
def test_a_stop_inside_a_sentence_is_not_a_stop(transcript: str) -> None:
    assert match(transcript) is None
