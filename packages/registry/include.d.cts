/** For g++ -I or binding.gyp include_dirs: the path of the registry's C++ header (libipc/registry.h). */
export declare const include_dir: string;
/** The same path, quoted for a shell or gyp command. */
export declare const include: string;
