/** For binding.gyp include_dirs: the path of libipc's C++ headers (futex, robust mutex, segment, identity). */
export declare const include_dir: string;
/** The same path, quoted for a shell or gyp command. */
export declare const include: string;
