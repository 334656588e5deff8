# Shared by the scenario scripts: find the linkbridge command (the repository's .venv by default).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LINKBRIDGE=${LINKBRIDGE:-$here/../../.venv/bin/linkbridge}
