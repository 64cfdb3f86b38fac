"""The README's video recipes (ffmpeg decode | u2net stream | ffmpeg
encode), run on a short clip that ffmpeg builds from generated photos
(FFV1, lossless, with a sound track), each decoded result checked frame
by frame against the image command's output of the same frames: bit for
bit through FFV1, within stated bounds through VP9 with alpha, ProRes 4444
and H.264, which are lossy; Y4M input as ffmpeg writes it. Skipped without
ffmpeg (Debian's ffmpeg package)."""
import os
import shutil

import numpy as np

import testlib

W, H, FRAMES, RATE = 128, 96, 6, 10
FAST = "--size 64 --threads 1"


def _need_ffmpeg():
    testlib.need_engine_and_pil()
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            raise testlib.Skip("no %s (apt-get install ffmpeg)" % tool)


def _sh(script, d):
    """Runs a recipe as the README gives it, with bash's pipefail so that a
    failing stage fails it."""
    env = dict(os.environ, U2NET=testlib.U2NET)
    return testlib.run(["bash", "-c", "set -euo pipefail; cd '%s'; %s" % (d, script)], env=env, timeout=300)


def _decode(d, name, pix_fmt, channels, decoder=()):
    p = testlib.run(["ffmpeg", "-v", "error"] + list(decoder) + ["-i", os.path.join(d, name), "-f", "rawvideo",
                                                                 "-pix_fmt", pix_fmt, "-"])
    assert len(p.stdout) == FRAMES * W * H * channels, "%s: %d bytes, not %d frames" % (name, len(p.stdout), FRAMES)
    return np.frombuffer(p.stdout, np.uint8).reshape(FRAMES, H, W, channels).astype(np.int64)


def _streams(d, name):
    p = testlib.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                     os.path.join(d, name)])
    return p.stdout_text.split()


def _clip(d):
    """clip.mkv: FRAMES generated photos (the sample scene at other seeds,
    moved along) in FFV1 with a 440 Hz tone; the frames as PNGs decoded
    from it; the image command's outputs of them in ref/."""
    import make_sample
    from PIL import Image
    for i in range(FRAMES):
        a = np.roll(np.asarray(make_sample.render(W, H, seed=7 + i)), 9 * i, axis=1)
        Image.fromarray(a).save(os.path.join(d, "src%03d.png" % (i + 1)))
    _sh("ffmpeg -v error -framerate %d -i src%%03d.png -f lavfi -i sine=frequency=440:duration=%g "
        "-c:v ffv1 -c:a flac -shortest clip.mkv && ffmpeg -v error -i clip.mkv frame%%03d.png"
        % (RATE, FRAMES / RATE), d)
    for i in range(FRAMES):
        a, b = (np.asarray(Image.open(os.path.join(d, n % (i + 1)))) for n in ("src%03d.png", "frame%03d.png"))
        assert np.array_equal(a, b), "FFV1 did not give back frame %d's pixels" % (i + 1)
    testlib.run([testlib.U2NET] + [os.path.join(d, "frame%03d.png" % (i + 1)) for i in range(FRAMES)] +
                ["-o", os.path.join(d, "ref") + "/", "-t", "rgba,composite,mask", "--background", "#00ff00",
                 "-q"] + FAST.split())

    def ref(t):
        return np.array([np.asarray(Image.open(os.path.join(d, "ref", "frame%03d_%s.png" % (i + 1, t))))
                         for i in range(FRAMES)]).astype(np.int64)
    return ref


# The README's recipes, as they are there but for the smaller network.
SIZE = ('size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 clip.mkv); '
        'rate=$(ffprobe -v error -select_streams v:0 -show_entries stream=r_frame_rate -of csv=p=0 clip.mkv); ')
DECODE = 'ffmpeg -v error -i clip.mkv -f rawvideo -pix_fmt rgb24 - | '
STREAM = '"$U2NET" stream ${size%%x*} ${size#*x} %s ' + FAST + ' -q | '
ENCODE = 'ffmpeg -v error -f rawvideo -pix_fmt %s -s $size -r $rate -i - '
WEBM = (SIZE + DECODE + STREAM % "-t rgba" + ENCODE % "rgba" +
        '-i clip.mkv -map 0:v -map 1:a? -c:v libvpx-vp9 -pix_fmt yuva420p -crf 30 -b:v 0 -c:a libopus out.webm')
PRORES = (SIZE + DECODE + STREAM % "-t rgba" + ENCODE % "rgba" +
          '-i clip.mkv -map 0:v -map 1:a? -c:v prores_ks -profile:v 4444 -pix_fmt yuva444p10le -c:a pcm_s16le out.mov')
GREEN_FFV1 = SIZE + DECODE + STREAM % "-t composite --background '#00ff00'" + ENCODE % "rgb24" + '-c:v ffv1 green.mkv'
GREEN_H264 = (SIZE + DECODE + STREAM % "-t composite --background '#00ff00'" + ENCODE % "rgb24" +
              '-c:v libx264 -pix_fmt yuv420p -crf 18 green.mp4')
Y4M_MASKS = 'ffmpeg -v error -i clip.mkv -pix_fmt yuv420p -f yuv4mpegpipe - | "$U2NET" stream --y4m -t mask ' + \
    FAST + ' -q -o masks/%05d.png'


@testlib.tidy
def test_recipes():
    """Transparent WebM (VP9, yuva420p) and ProRes 4444 with the clip's
    sound; green screen into FFV1 (bit for bit) and H.264; masks from Y4M
    as numbered PNGs."""
    _need_ffmpeg()
    from PIL import Image
    d = testlib.scratch_dir("video")
    ref = _clip(d)
    rgba, composite, mask = ref("rgba"), ref("composite"), ref("mask")
    opaque = rgba[..., 3] >= 128

    _sh(WEBM, d)
    assert _streams(d, "out.webm") == ["vp9", "opus"], _streams(d, "out.webm")
    # ffmpeg's own VP9 decoder leaves the alpha out; libvpx's reads it
    got = _decode(d, "out.webm", "rgba", 4, ["-c:v", "libvpx-vp9"])
    alpha = np.abs(got[..., 3] - rgba[..., 3])
    colour = np.abs(got[..., :3] - rgba[..., :3])[opaque]
    print("    VP9 with alpha: alpha %.2f levels off on average (most %d), colours %.2f where opaque"
          % (alpha.mean(), alpha.max(), colour.mean()))
    assert alpha.mean() <= 2 and np.percentile(alpha, 99) <= 16 and colour.mean() <= 12

    _sh(PRORES, d)
    assert _streams(d, "out.mov") == ["prores", "pcm_s16le"], _streams(d, "out.mov")
    got = _decode(d, "out.mov", "rgba", 4)
    alpha = np.abs(got[..., 3] - rgba[..., 3])
    colour = np.abs(got[..., :3] - rgba[..., :3])[opaque]
    print("    ProRes 4444: alpha %.3f off on average (most %d), colours %.3f (most %d)"
          % (alpha.mean(), alpha.max(), colour.mean(), colour.max()))
    assert alpha.max() <= 2 and colour.mean() <= 1 and colour.max() <= 4

    _sh(GREEN_FFV1, d)
    got = _decode(d, "green.mkv", "rgb24", 3)
    assert np.array_equal(got, composite), "the FFV1 green screen is not the image command's composite"
    print("    green screen, FFV1: bit for bit")

    _sh(GREEN_H264, d)
    err = np.abs(_decode(d, "green.mp4", "rgb24", 3) - composite)
    print("    green screen, H.264: %.2f levels off on average" % err.mean())
    assert err.mean() <= 3

    _sh(Y4M_MASKS, d)
    masks = np.array([np.asarray(Image.open(os.path.join(d, "masks", "%05d.png" % (i + 1))))
                      for i in range(FRAMES)]).astype(np.int64)
    assert sorted(os.listdir(os.path.join(d, "masks"))) == ["%05d.png" % (i + 1) for i in range(FRAMES)]
    differ = float(np.mean(masks != mask))
    print("    masks from Y4M (4:2:0): %.3f%% of pixels differ from the RGB frames' masks" % (100 * differ))
    assert differ <= 0.01
