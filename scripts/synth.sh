#!/usr/bin/env bash
# Synthesize Jifen's CDK app offline (no AWS credentials, no lookups) and lint every template.
#   scripts/synth.sh                      # stage "dev" (cdk.json)
#   scripts/synth.sh -c jifen:stage=prod  # extra args go to `cdk synth`
# Exits non-zero if the CLI install, synthesis (incl. cdk-nag findings) or cfn-lint fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
infra="$repo_root/infra"
python="$repo_root/.venv/bin/python"
cfn_lint="$repo_root/.venv/bin/cfn-lint"
[[ -x "$python" && -x "$cfn_lint" ]] || { echo "synth: $repo_root/.venv with requirements-dev.txt is needed" >&2; exit 1; }

cd "$infra"
# The CLI version is pinned in package-lock.json (2.x: CLI 3.x cannot read aws-cdk-lib 2 assemblies).
locked="$(node -p "require('./package-lock.json').packages['node_modules/aws-cdk'].version")"
installed="$(node -p "try { require('./node_modules/aws-cdk/package.json').version } catch { '' }")"
if [[ "$installed" != "$locked" ]]; then
  echo "synth: installing aws-cdk@$locked (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# Offline and anonymous: dummy environment, no credential/IMDS probing, no notices/telemetry.
export CDK_DEFAULT_ACCOUNT="${CDK_DEFAULT_ACCOUNT:-000000000000}"
export CDK_DEFAULT_REGION="${CDK_DEFAULT_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
export CDK_DISABLE_CLI_TELEMETRY=true
export CDK_DISABLE_VERSION_CHECK=1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-20}"
export PYTHONDONTWRITEBYTECODE=1

rm -rf cdk.out chalice.out
started=$SECONDS
./node_modules/.bin/cdk synth --quiet --no-notices --no-version-reporting "$@"
synth_seconds=$((SECONDS - started))
rm -rf chalice.out  # chalice's intermediate package; the assets are copied into cdk.out

started=$SECONDS
cd "$repo_root"
"$cfn_lint" --config-file infra/.cfnlintrc.yaml
lint_seconds=$((SECONDS - started))

echo "synth: ok (cdk synth ${synth_seconds}s, cfn-lint ${lint_seconds}s): $(ls infra/cdk.out/*.template.json | tr '\n' ' ')"
