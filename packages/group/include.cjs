// Like node-addon-api's include_dir: the path of the group's public C++ header (libipc/group_member.h), for g++ -I
// or a binding.gyp's include_dirs. It also needs @libipc/shm's and @libipc/registry's (require('<pkg>/include')).
const path = require('node:path');

exports.include_dir = path.relative('.', path.join(__dirname, 'include'));
exports.include = `"${path.join(__dirname, 'include')}"`;
