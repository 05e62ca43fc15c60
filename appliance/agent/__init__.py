"""The agent: turn-taking, speech handles and the state machine, over abstract audio input and output."""

from appliance.agent.agent import DEFAULT_INSTRUCTIONS, Agent, AgentTask, StopResponse
from appliance.agent.events import EventType, TurnMetrics
from appliance.agent.inline import InlineTask
from appliance.agent.options import SessionOptions
from appliance.agent.session import AgentSession
from appliance.agent.speech import SpeechHandle
from appliance.agent.state import AgentState
from appliance.agent.tools import FunctionTool, RunContext, ToolError, function_tool

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "Agent",
    "AgentSession",
    "AgentState",
    "AgentTask",
    "EventType",
    "FunctionTool",
    "InlineTask",
    "RunContext",
    "SessionOptions",
    "SpeechHandle",
    "StopResponse",
    "ToolError",
    "TurnMetrics",
    "function_tool",
]
