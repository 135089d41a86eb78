"""One dynamic partition per input: key `<batch>/<input name>`, shared by all four assets."""

from __future__ import annotations

import dagster as dg

# The name is the key in instance storage: renaming it orphans every registered input.
inputs_partitions = dg.DynamicPartitionsDefinition(name="bedrock_inputs")
