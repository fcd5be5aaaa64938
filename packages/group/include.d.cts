/** For g++ -I or binding.gyp include_dirs: the path of the group's C++ header (libipc/group_member.h). */
export declare const include_dir: string;
/** The same path, quoted for a shell or gyp command. */
export declare const include: string;
