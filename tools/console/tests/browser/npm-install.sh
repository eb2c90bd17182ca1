#!/bin/sh
# e2e.console.npm: installs the browser test's npm packages (package.json,
# pinned by package-lock.json) into DIR, outside the source tree: `npm ci`,
# which installs exactly the lock file's versions, once per lock file.
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
if [ -d "$dir/node_modules/puppeteer-core" ] && cmp -s "$here/package-lock.json" "$dir/package-lock.json"; then
	echo "npm-install: $dir is up to date"
	exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dir/"
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error
