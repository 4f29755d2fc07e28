/* BlockRTC compat: source of the empty static-library stand-ins in this
 * directory's meson.build (worker/meson.build lists them in link_whole of
 * libmediasoup-worker, which we never build; the real code comes from the
 * Debian library dependency). Never compiled for mediasoup-worker. */
typedef int blockrtc_worker_build_stub;
