// Like node-addon-api's include_dir: the path of the registry's public C++ header (libipc/registry.h), for g++ -I
// or a binding.gyp's include_dirs. It also needs @libipc/shm's (require('@libipc/shm/include')).
const path = require('node:path');

exports.include_dir = path.relative('.', path.join(__dirname, 'include'));
exports.include = `"${path.join(__dirname, 'include')}"`;
