"""Echo cancellation: the speaker's sound taken out of the microphone, with what was played as reference."""
