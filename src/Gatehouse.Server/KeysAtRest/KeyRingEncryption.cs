using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Gatehouse.Server.Storage;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.KeysAtRest;

/// <summary>
/// Data Protection writes each master key through this encryptor: the key's XML sealed with the key-encryption key
/// (AES-256-GCM), named by that key's id. Without an encryptor Data Protection stores master keys in clear (and
/// warns "No XML encryptor configured"), and anyone holding the key ring holds every secret it protects.
/// </summary>
internal sealed class KeyRingEncryptor(KeyEncryptionKey key) : IXmlEncryptor
{
    internal static readonly XName SealedKeyName = XName.Get("sealedKey", "urn:gatehouse:key-encryption:v1");
    internal const string Context = "Gatehouse Data Protection master key v1";

    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        var plaintext = Encoding.UTF8.GetBytes(plaintextElement.ToString(SaveOptions.DisableFormatting));
        try
        {
            var element = new XElement(SealedKeyName,
                new XAttribute("kek", key.Id),
                new XAttribute("alg", "A256GCM"),
                Convert.ToBase64String(key.Encrypt(plaintext, Context)));
            return new EncryptedXmlInfo(element, typeof(KeyRingDecryptor));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}

/// <summary>Made by Data Protection (it names this type in every sealed key) with the server's services.</summary>
internal sealed class KeyRingDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement)
    {
        var key = services.GetRequiredService<KeyEncryptionKey>();
        var sealedBy = encryptedElement.Attribute("kek")?.Value;
        if (encryptedElement.Name != KeyRingEncryptor.SealedKeyName || sealedBy is null)
            throw new CryptographicException("The key ring holds a key this server did not seal.");
        if (!string.Equals(sealedBy, key.Id, StringComparison.Ordinal))
            throw new CryptographicException(KeyRingSealing.WrongKeyMessage(sealedBy, key.Id));
        var plaintext = key.Decrypt(Convert.FromBase64String(encryptedElement.Value), KeyRingEncryptor.Context);
        try
        {
            return XElement.Parse(Encoding.UTF8.GetString(plaintext));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}

/// <summary>
/// Run at every start, before anything reads the key ring: master keys stored in clear (by a release before 0.2.0,
/// or by one started on this data since) are sealed in place and the clear copy deleted; a key ring sealed with
/// another key-encryption key stops the start with one line instead of Data Protection quietly making new keys.
/// </summary>
internal static partial class KeyRingSealing
{
    private static readonly XNamespace DataProtection = "http://schemas.asp.net/2015/03/dataProtection";
    private static readonly XName RequiresEncryption = DataProtection + "requiresEncryption";
    private static readonly XName EncryptedSecret = DataProtection + "encryptedSecret";

    public static string WrongKeyMessage(string sealedBy, string given) =>
        $"The Data Protection key ring was sealed with key-encryption key {sealedBy}, but this node was given {given} " +
        "(Gatehouse:KeyEncryption:Key or KeyFile): give every node the key this deployment was started with.";

    /// <summary>Refuses (<see cref="KeyEncryptionProblemException"/>) a key-encryption key other than the one the key ring is sealed with.</summary>
    /// <returns>The key ring as stored.</returns>
    public static IReadOnlyCollection<XElement> CheckKey(IServiceProvider services)
    {
        var repository = services.GetRequiredService<IOptions<KeyManagementOptions>>().Value.XmlRepository
            ?? throw new InvalidOperationException("The key ring's repository is not configured.");
        var key = services.GetRequiredService<KeyEncryptionKey>();
        var elements = repository.GetAllElements();
        foreach (var sealedBy in elements.SelectMany(e => e.Descendants(KeyRingEncryptor.SealedKeyName)).Select(e => e.Attribute("kek")?.Value))
        {
            if (string.Equals(sealedBy, key.Id, StringComparison.Ordinal))
                continue;
            // A key file this start made (the key was meant to come from elsewhere) sealed nothing: it goes again.
            if (key.CreatedFile is { } made)
                File.Delete(made);
            throw new KeyEncryptionProblemException(WrongKeyMessage(sealedBy ?? "(unnamed)", key.Id));
        }
        return elements;
    }

    /// <returns>How many clear master keys were sealed.</returns>
    public static int SealClearKeys(IServiceProvider services)
    {
        var management = services.GetRequiredService<IOptions<KeyManagementOptions>>().Value;
        var repository = management.XmlRepository ?? throw new InvalidOperationException("The key ring's repository is not configured.");
        var encryptor = management.XmlEncryptor ?? throw new InvalidOperationException("The key ring's encryptor is not configured.");
        var clear = CheckKey(services).Where(element => element.Descendants().Any(IsClearSecret)).ToList();
        if (clear.Count == 0)
            return 0;
        if (repository is EntityFrameworkCoreXmlRepository<GatehouseDb>)
            SealRows(services, encryptor);
        else if (repository is IDeletableXmlRepository deletable)
            StoreSealedThenDeleteClear(repository, deletable, clear, encryptor);
        else
            throw new InvalidOperationException("The key ring's repository cannot replace the clear copies it holds.");
        return clear.Count;
    }

    /// <summary>PostgreSQL: each row rewritten in place, in one transaction.</summary>
    private static void SealRows(IServiceProvider services, IXmlEncryptor encryptor)
    {
        using var db = services.GetRequiredService<IDbContextFactory<GatehouseDb>>().CreateDbContext();
        foreach (var row in db.DataProtectionKeys.ToList())
        {
            var element = XElement.Parse(row.Xml!);
            if (element.Descendants().Any(IsClearSecret))
                row.Xml = Seal(element, encryptor).ToString(SaveOptions.DisableFormatting);
        }
        db.SaveChanges();
    }

    /// <summary>
    /// Files: the sealed copy is stored before the clear one goes, so a crash between the two leaves the same key
    /// twice (harmless; the next start deletes the clear one), never no key at all.
    /// </summary>
    private static void StoreSealedThenDeleteClear(IXmlRepository repository, IDeletableXmlRepository deletable, List<XElement> clear, IXmlEncryptor encryptor)
    {
        foreach (var element in clear)
            repository.StoreElement(Seal(element, encryptor), FriendlyName(element));
        var ids = clear.Select(KeyId).ToHashSet(StringComparer.Ordinal);
        deletable.DeleteElements(elements =>
        {
            foreach (var candidate in elements)
            {
                if (ids.Contains(KeyId(candidate.Element)) && candidate.Element.Descendants().Any(IsClearSecret))
                    candidate.DeletionOrder = 1;
            }
        });
    }

    private static bool IsClearSecret(XElement element) =>
        string.Equals((string?)element.Attribute(RequiresEncryption), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>What Data Protection's own key manager does to a new key before storing it, applied to a stored one.</summary>
    private static XElement Seal(XElement element, IXmlEncryptor encryptor)
    {
        var copy = new XElement(element);
        foreach (var secret in copy.Descendants().Where(IsClearSecret).ToList())
        {
            var sealedSecret = encryptor.Encrypt(secret);
            secret.ReplaceWith(new XElement(EncryptedSecret,
                new XAttribute("decryptorType", sealedSecret.DecryptorType.AssemblyQualifiedName!),
                sealedSecret.EncryptedElement));
        }
        return copy;
    }

    private static string KeyId(XElement element) => (string?)element.Attribute("id") ?? "";

    /// <summary>
    /// A name of its own (a file repository refuses to replace the clear key's file, and a retry after a crash must
    /// not collide with the first try's copy).
    /// </summary>
    private static string FriendlyName(XElement element) => $"key-{KeyId(element)}-sealed-{Guid.NewGuid():n}";
}
