using System.Text;
using Gatehouse.Server.Certificates;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Server.Console;

/// <summary>Settings → Security: client certificates from CSRs and the network's mTLS switch.</summary>
internal sealed class SecurityModel(ClientCertificates certificates, CertificateAuthority authority, TimeProvider clock, ConsoleAccess access) : ConsolePage(access)
{
    private const int MaxCsrUpload = 16 * 1024;

    [BindProperty(SupportsGet = true)]
    public string? Confirm { get; set; }

    [BindProperty(SupportsGet = true)]
    public Guid? Id { get; set; }

    public IReadOnlyList<ClientCertificate> Certificates { get; private set; } = [];
    public string? Error { get; private set; }
    public ClientCertificate? Created { get; private set; }
    public string? Name { get; private set; }
    public string? Csr { get; private set; }

    public DateTimeOffset Now => clock.GetUtcNow();
    public string Here => $"/console/n/{Access.Network.Id}/security";
    public ClientCertificate? ToDelete => Confirm == "delete" ? Certificates.FirstOrDefault(c => c.Id == Id && c.RevokedAt is null) : null;
    public bool DialogOpen => Access.CanChangeSecurity && (ToDelete is not null || Confirm == "mtls");
    public int ActiveCount => Certificates.Count(IsActive);

    public async Task OnGetAsync() => Certificates = await certificates.ListAsync(Access.Network.Id, HttpContext.RequestAborted);

    public async Task<IActionResult> OnGetDownloadAsync(Guid id)
    {
        var certificate = (await certificates.ListAsync(Access.Network.Id, HttpContext.RequestAborted)).FirstOrDefault(c => c.Id == id);
        if (certificate is null)
            return NotFound();
        return File(Encoding.ASCII.GetBytes(authority.ChainPem(certificate)), "application/x-pem-file", $"{certificate.Name}.pem");
    }

    public async Task<IActionResult> OnPostCreateAsync(string? name, string? csr, IFormFile? csrFile)
    {
        if (!Access.CanChangeSecurity)
            return Refused();
        if (csrFile is { Length: > 0 })
        {
            if (csrFile.Length > MaxCsrUpload)
            {
                csr = new string('x', MaxCsrUpload + 1);
            }
            else
            {
                using var reader = new StreamReader(csrFile.OpenReadStream());
                csr = await reader.ReadToEndAsync(HttpContext.RequestAborted);
            }
        }
        var (created, error) = await certificates.CreateAsync(Access.Network, name, csr, Actor, HttpContext.RequestAborted);
        Certificates = await certificates.ListAsync(Access.Network.Id, HttpContext.RequestAborted);
        if (error is not null)
        {
            Error = error.Message;
            Name = name;
            Csr = csr is { Length: <= MaxCsrUpload } ? csr : null;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        Created = created;
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(Guid id)
    {
        if (!Access.CanChangeSecurity)
            return Refused();
        if (await certificates.RevokeAsync(Access.Network, id, Actor, HttpContext.RequestAborted) is { } refused)
            Problem = refused.Message;
        else
            Status = "The certificate was deleted and is revoked: it is refused from now on.";
        return Redirect(Here);
    }

    public async Task<IActionResult> OnPostMtlsAsync(bool on)
    {
        if (!Access.CanChangeSecurity)
            return Refused();
        if (await certificates.SetMtlsAsync(Access.Network, on, Actor, HttpContext.RequestAborted) is { } refused)
        {
            Problem = refused.Message;
            return Redirect(Here);
        }
        Status = on ? "mTLS is on: the auth-token and admin endpoints now require one of this network's certificates."
            : "mTLS is off: server keys and admin tokens work without a client certificate.";
        return Redirect(Here);
    }

    public bool IsActive(ClientCertificate c) => c.RevokedAt is null && c.NotAfter > Now;

    public string State(ClientCertificate c) =>
        c.RevokedAt is { } revoked ? $"Deleted (revoked) {revoked:yyyy-MM-dd HH:mm} UTC"
        : c.NotAfter <= Now ? "Expired"
        : c.NotAfter - Now < TimeSpan.FromDays(30) ? "Active, expires in under 30 days: renew now"
        : "Active";

    public static string Grouped(string hex) => string.Join(':', hex.Chunk(2).Select(pair => new string(pair))).ToUpperInvariant();
}
