using System.Security.Cryptography;
using System.Text;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Storage;

namespace Gatehouse.Server.KeysAtRest;

/// <summary>
/// The key that encrypts every key the database and the key ring hold (the Data Protection master keys, and through
/// them the signing keys, the auth-token MAC keys and the CA key). It is never stored beside them: on SQLite it is a
/// file of its own, made 0600 at first start, that the operator may keep on another disk; on PostgreSQL each node
/// is given the same one (a file or an environment variable, as a Kubernetes secret would be). A database dump or a
/// copy of the data folder without it opens nothing (docs/security.md, "Keys at rest").
/// </summary>
internal sealed class KeyEncryptionKey
{
    public const int Length = 32;
    private const int NonceLength = 12;
    private const int TagLength = 16;
    private readonly byte[] _key;

    private KeyEncryptionKey(byte[] key, string? createdFile)
    {
        _key = key;
        Id = IdOf(key);
        CreatedFile = createdFile;
    }

    /// <summary>A fingerprint that names the key in what it encrypted, so a node given another key says so instead of failing obscurely.</summary>
    public string Id { get; }

    /// <summary>The file this start made the key in (null when the key was given or found).</summary>
    public string? CreatedFile { get; }

    public const string DefaultFileName = "key-encryption.key";

    /// <summary>The configured key; on SQLite with neither setting, the file in the data folder, made on first start.</summary>
    public static KeyEncryptionKey Load(GatehouseOptions options)
    {
        var settings = options.KeyEncryption;
        if (!string.IsNullOrWhiteSpace(settings.Key))
            return new KeyEncryptionKey(Parse(settings.Key) ?? throw Invalid("Gatehouse:KeyEncryption:Key"), null);
        var path = FilePath(options) ?? throw new InvalidOperationException("The options validator requires a key-encryption key with PostgreSQL.");
        try
        {
            // A file the operator supplies keeps its owner and mode (a secret mount may be read-only, 0400 or root's).
            if (File.Exists(path))
                return new KeyEncryptionKey(Parse(File.ReadAllText(path)) ?? throw Invalid(path), null);
            if (Directory.Exists(path))
                throw new KeyEncryptionProblemException($"The key-encryption key file {path} is a folder; name a file (Gatehouse:KeyEncryption:KeyFile).");
            var key = RandomNumberGenerator.GetBytes(Length);
            // Only a folder made here is narrowed to its owner: an existing one (/etc, a shared mount) is left as it is.
            var folder = Path.GetDirectoryName(path)!;
            if (!Directory.Exists(folder))
                PrivateFiles.Folder(folder);
            using (var file = PrivateFiles.Create(path, FileMode.CreateNew))
                file.Write(Encoding.ASCII.GetBytes(Format(key) + "\n"));
            return new KeyEncryptionKey(key, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyEncryptionProblemException($"The key-encryption key file {path} cannot be read or made: {e.Message}");
        }
    }

    /// <summary>The key file this deployment reads: the configured one, or on SQLite the data folder's.</summary>
    public static string? FilePath(GatehouseOptions options) =>
        !string.IsNullOrWhiteSpace(options.KeyEncryption.KeyFile) ? Path.GetFullPath(options.KeyEncryption.KeyFile)
        : StorageSetup.UsesPostgreSql(options) ? null
        : Path.Combine(Path.GetFullPath(options.DataDirectory), DefaultFileName);

    /// <summary>A new random key in the form the settings take (base64 of 32 bytes).</summary>
    public static string NewKeyText() => Format(RandomNumberGenerator.GetBytes(Length));

    /// <summary>The key from its text form, or null when it is not base64 of exactly 32 bytes.</summary>
    public static byte[]? Parse(string text)
    {
        var buffer = new byte[Length + 3];
        return Convert.TryFromBase64String(text.Trim(), buffer, out var written) && written == Length ? buffer[..Length] : null;
    }

    /// <summary>AES-256-GCM; <paramref name="context"/> binds the result to what it is (another item's ciphertext cannot stand in for it).</summary>
    public byte[] Encrypt(ReadOnlySpan<byte> plaintext, string context)
    {
        var box = new byte[NonceLength + plaintext.Length + TagLength];
        var nonce = box.AsSpan(0, NonceLength);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key, TagLength);
        aes.Encrypt(nonce, plaintext, box.AsSpan(NonceLength, plaintext.Length), box.AsSpan(NonceLength + plaintext.Length), Encoding.UTF8.GetBytes(context));
        return box;
    }

    /// <summary>Throws <see cref="CryptographicException"/> when the data was not made by this key for this context, or was altered.</summary>
    public byte[] Decrypt(ReadOnlySpan<byte> box, string context)
    {
        if (box.Length < NonceLength + TagLength)
            throw new CryptographicException("The encrypted key is truncated.");
        var plaintext = new byte[box.Length - NonceLength - TagLength];
        using var aes = new AesGcm(_key, TagLength);
        aes.Decrypt(box[..NonceLength], box.Slice(NonceLength, plaintext.Length), box[^TagLength..], plaintext, Encoding.UTF8.GetBytes(context));
        return plaintext;
    }

    private static string Format(byte[] key) => Convert.ToBase64String(key);

    private static string IdOf(byte[] key) =>
        Convert.ToHexStringLower(SHA256.HashData([.. "Gatehouse key-encryption key id\n"u8, .. key]))[..16];

    private static KeyEncryptionProblemException Invalid(string where) =>
        new($"The key-encryption key in {where} is not base64 of {Length} bytes (make one with `Gatehouse.Server key-encryption-key new`).");
}

/// <summary>The key-encryption key is missing, malformed or not the one this deployment's keys were encrypted with: one line for the operator, exit 2.</summary>
internal sealed class KeyEncryptionProblemException(string message) : Exception(message);
