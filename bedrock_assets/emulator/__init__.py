"""Local stand-in for AWS: S3 (moto) + the Bedrock batch control plane + bedrock-runtime.

Imports nothing from the rest of `bedrock_assets`. See docs/emulator.md.
"""

from .config import EmulatorConfig
from .persistence import DataDirError
from .runner import Emulator, EmulatorClient, run_emulator

__all__ = ["DataDirError", "Emulator", "EmulatorClient", "EmulatorConfig", "run_emulator"]
