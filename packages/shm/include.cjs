// Like node-addon-api's include_dir: other addons add this to their binding.gyp include_dirs
// to reuse libipc's futex, robust mutex, segment and process-identity headers.
const path = require('node:path');

exports.include_dir = path.relative('.', path.join(__dirname, 'include'));
exports.include = `"${path.join(__dirname, 'include')}"`;
