// Extracts a zip the way a streaming reader does: java.util.zip.ZipInputStream, front to back,
// using only the local headers. Run with Java 11+'s source launcher, no build step:
//
//     java Extract.java [--sha256] ZIPFILE OUTDIR [ZIPFILE OUTDIR ...]
//
// Entry number n (from 0, in the order of the stream) is written to OUTDIR/n, and OUTDIR/entries
// gets one line per entry: "n SIZE SHA256 NAME-AS-UTF-8-HEX" (hex, so any name reads back
// exactly). With --sha256 the entries are read and hashed but not written (for archives of
// tens of thousands of members). Any error (ZipException included) is printed on stderr and
// exits 1.

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

public class Extract {
    public static void main(String[] args) throws IOException, NoSuchAlgorithmException {
        boolean write = args.length == 0 || !args[0].equals("--sha256");
        int first = write ? 0 : 1;
        if (args.length == first || (args.length - first) % 2 != 0) {
            System.err.println(
                "usage: java Extract.java [--sha256] ZIPFILE OUTDIR [ZIPFILE OUTDIR ...]");
            System.exit(2);
        }
        for (int i = first; i < args.length; i += 2) {
            try {
                extract(Path.of(args[i]), Path.of(args[i + 1]), write);
            } catch (IOException | RuntimeException e) {
                System.err.println(args[i] + ": " + e);
                System.exit(1);
            }
        }
    }

    static void extract(Path zip, Path out, boolean write)
            throws IOException, NoSuchAlgorithmException {
        Files.createDirectories(out);
        byte[] buffer = new byte[1 << 16];
        try (InputStream file = new BufferedInputStream(Files.newInputStream(zip), 1 << 16);
             ZipInputStream in = new ZipInputStream(file, StandardCharsets.UTF_8);
             Writer entries = Files.newBufferedWriter(out.resolve("entries"))) {
            ZipEntry entry;
            long n = 0;
            while ((entry = in.getNextEntry()) != null) {
                long size = 0;
                MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
                try (OutputStream target = write
                        ? Files.newOutputStream(out.resolve(Long.toString(n)))
                        : OutputStream.nullOutputStream()) {
                    int read;
                    while ((read = in.read(buffer)) != -1) {
                        target.write(buffer, 0, read);
                        sha256.update(buffer, 0, read);
                        size += read;
                    }
                }
                entries.write(n + " " + size + " " + hex(sha256.digest()) + " "
                    + hex(entry.getName().getBytes(StandardCharsets.UTF_8)) + "\n");
                n++;
            }
        }
    }

    static String hex(byte[] bytes) {
        char[] digits = "0123456789abcdef".toCharArray();
        char[] text = new char[2 * bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            text[2 * i] = digits[(bytes[i] >> 4) & 0xf];
            text[2 * i + 1] = digits[bytes[i] & 0xf];
        }
        return new String(text);
    }
}
